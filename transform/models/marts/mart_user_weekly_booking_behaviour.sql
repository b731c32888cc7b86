-- One row per user and ISO week: office plans vs desk bookings vs attendance, and the
-- booking lead time (days from a `bookingCreated` action to the booked day), where the
-- user actions log has one.
with days as (
    select
        user_id,
        cast(date_trunc('week', day) as date) as week_start,
        count(*) filter (where plan = 'o') as office_plan_days,
        count(*) filter (where booking_place_id is not null) as booked_days,
        count(*) filter (where attendance_type in ('confirmed', 'walkIn')) as attended_days,
        count(*) filter (where attendance_type = 'noShow') as no_show_days
    from {{ ref('stg_bookings_attendance') }}
    group by user_id, cast(date_trunc('week', day) as date)
),
leads as (
    select
        user_id,
        cast(date_trunc('week', day) as date) as week_start,
        avg(day - acted_on) as avg_booking_lead_days
    from {{ ref('stg_user_actions_log') }}
    where action_type = 'bookingCreated' and day is not null and acted_on is not null
    group by user_id, cast(date_trunc('week', day) as date)
)
select
    d.user_id,
    d.week_start,
    d.office_plan_days,
    d.booked_days,
    d.attended_days,
    d.no_show_days,
    l.avg_booking_lead_days
from days as d
left join leads as l on l.user_id = d.user_id and l.week_start = d.week_start
