-- Business rule: a desk is attended on no more days than it is booked.
select desk_id, week_start
from {{ ref('mart_desk_weekly_utilisation') }}
where attended_days > booked_days
