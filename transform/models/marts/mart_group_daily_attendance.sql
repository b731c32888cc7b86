-- One row per primary group (the users' `primaryGroupId`) and day.
select
    u.primary_group_id as group_id,
    g.group_name,
    b.day,
    count(distinct u.user_id) as members,
    count(*) filter (where b.plan = 'o') as planned_office,
    count(*) filter (where b.attendance_type in ('confirmed', 'walkIn')) as attended,
    count(*) filter (where b.attendance_type = 'noShow') as no_shows
from {{ ref('stg_bookings_attendance') }} as b
join {{ ref('stg_users') }} as u on u.user_id = b.user_id
left join {{ ref('stg_groups') }} as g on g.group_id = u.primary_group_id
where u.primary_group_id is not null
group by u.primary_group_id, g.group_name, b.day
