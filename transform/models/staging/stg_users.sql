-- Column names are quoted as Calven spells them: target-postgres keeps camelCase and
-- DuckDB matches identifiers case-insensitively, so `"userId"` reads `userid` there too.
select
    {{ calven_id('"userId"') }} as user_id,
    "email" as email,
    "firstName" as first_name,
    "lastName" as last_name,
    "userName" as user_name,
    "onboarded" as onboarded,
    {{ calven_id('"primaryGroupId"') }} as primary_group_id,
    {{ calven_id('"primaryLocationId"') }} as primary_location_id,
    "status" as status
from ({{ latest_row(source('calven', 'users'), ['"userId"']) }}) as u
