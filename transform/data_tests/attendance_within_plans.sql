-- Business rule: per location and day, confirmed + unconfirmed + no-shows (all kinds of
-- "planned office" outcomes) never exceed the people planned in the office.
select location_id, day
from {{ ref('mart_location_daily_attendance') }}
where confirmed + unconfirmed + no_shows > planned_office
