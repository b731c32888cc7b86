-- One row per desk and ISO week of the loaded range (desks never booked included):
-- booked and attended days over the week's working days (Monday to Friday).
with weeks as (
    select distinct
        cast(date_trunc('week', day) as date) as week_start,
        cast(extract(isoyear from day) as integer) as iso_year,
        cast(extract(week from day) as integer) as iso_week
    from {{ ref('stg_bookings_attendance') }}
),
usage as (
    select
        desk_id,
        cast(date_trunc('week', day) as date) as week_start,
        count(distinct day) as booked_days,
        count(distinct case when attended then day end) as attended_days
    from {{ ref('mart_desk_daily_utilisation') }}
    group by desk_id, cast(date_trunc('week', day) as date)
)
select
    d.desk_id,
    d.desk_name,
    d.location_id,
    w.week_start,
    w.iso_year,
    w.iso_week,
    coalesce(u.booked_days, 0) as booked_days,
    coalesce(u.attended_days, 0) as attended_days,
    5 as working_days,
    cast(coalesce(u.attended_days, 0) as double precision) / 5 as utilisation
from {{ ref('stg_desks') }} as d
cross join weeks as w
left join usage as u on u.desk_id = d.desk_id and u.week_start = w.week_start
