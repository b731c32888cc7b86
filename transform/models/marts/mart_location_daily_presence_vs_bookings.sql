-- One row per location and day: people a presence system saw there vs people booked there.
with seen as (
    select distinct pl.location_id, p.day, p.user_id
    from {{ ref('stg_presence') }} as p
    join {{ ref('int_place_locations') }} as pl on pl.place_id = p.place_id
    where p.user_id is not null and p.day is not null
),
booked as (
    select distinct booking_location_id as location_id, day, user_id
    from {{ ref('stg_bookings_attendance') }}
    where booking_place_id is not null and booking_location_id is not null
),
both_sides as (
    select
        coalesce(s.location_id, b.location_id) as location_id,
        coalesce(s.day, b.day) as day,
        s.user_id is not null as was_seen,
        b.user_id is not null as was_booked
    from seen as s
    full outer join booked as b
        on b.location_id = s.location_id and b.day = s.day and b.user_id = s.user_id
)
select
    location_id,
    day,
    count(*) filter (where was_seen) as people_seen,
    count(*) filter (where was_booked) as people_booked,
    count(*) filter (where was_seen and not was_booked) as seen_without_booking,
    count(*) filter (where was_booked and not was_seen) as booked_without_presence
from both_sides
group by location_id, day
