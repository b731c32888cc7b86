select
    {{ calven_id('"locationId"') }} as location_id,
    "locationName" as location_name,
    "address" as address,
    "status" as status
from ({{ latest_row(source('calven', 'locations'), ['"locationId"']) }}) as l
