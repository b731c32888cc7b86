select
    {{ calven_id('"sourceId"') }} as source_id,
    {{ calven_id('"eventId"') }} as event_id,
    "timestamp" as seen_at,
    {{ utc_date('"timestamp"') }} as day,
    {{ calven_id('"userId"') }} as user_id,
    {{ calven_id('"sourceUserId"') }} as source_user_id,
    {{ calven_id('"locationId"') }} as place_id,
    "locationType" as location_type
from ({{ latest_row(source('calven', 'presence'), ['"sourceId"', '"eventId"']) }}) as p
