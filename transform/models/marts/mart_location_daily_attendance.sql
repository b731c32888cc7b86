-- One row per location and day: plans, bookings and attendance (docs: Data Models page).
select
    b.location_id,
    l.location_name,
    b.day,
    count(*) filter (where b.plan = 'o') as planned_office,
    count(*) filter (where b.booking_place_id is not null) as booked,
    count(*) filter (where b.attendance_type = 'confirmed') as confirmed,
    count(*) filter (where b.attendance_type = 'unconfirmed') as unconfirmed,
    count(*) filter (where b.attendance_type = 'walkIn') as walk_ins,
    count(*) filter (where b.attendance_type = 'noShow') as no_shows,
    count(*) filter (where b.attendance_type in ('confirmed', 'walkIn')) as attended,
    cast(count(*) filter (where b.attendance_type = 'noShow') as double precision)
        / nullif(count(*) filter (where b.attendance_type in ('confirmed', 'noShow')), 0)
        as no_show_rate
from {{ ref('stg_bookings_attendance') }} as b
left join {{ ref('stg_locations') }} as l on l.location_id = b.location_id
where b.location_id is not null
group by b.location_id, l.location_name, b.day
