select
    {{ calven_id('"deskId"') }} as desk_id,
    "deskName" as desk_name,
    {{ calven_id('"zoneId"') }} as zone_id,
    "zoneName" as zone_name,
    {{ calven_id('"levelId"') }} as level_id,
    "levelName" as level_name,
    {{ calven_id('"locationId"') }} as location_id,
    "locationName" as location_name,
    "status" as status
from ({{ latest_row(source('calven', 'desks'), ['"deskId"']) }}) as d
