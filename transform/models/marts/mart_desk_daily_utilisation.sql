-- One row per desk and day it was booked: who booked it, and whether they came.
select
    b.booking_place_id as desk_id,
    d.desk_name,
    d.location_id,
    b.day,
    b.user_id,
    b.attendance_type in ('confirmed', 'walkIn') as attended
from {{ ref('stg_bookings_attendance') }} as b
left join {{ ref('stg_desks') }} as d on d.desk_id = b.booking_place_id
where b.booking_place_id is not null
