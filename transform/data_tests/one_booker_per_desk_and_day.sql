-- Business rule: a desk is booked by at most one person on a day (a new booking replaces
-- the old one: Calven's Data Models page).
select desk_id, day
from {{ ref('mart_desk_daily_utilisation') }}
group by desk_id, day
having count(*) > 1
