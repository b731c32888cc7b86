select
    {{ calven_id('"userId"') }} as user_id,
    {{ utc_date('"day"') }} as day,
    "plan" as plan,
    cast("bookingDepth" as integer) as booking_depth,
    "attendanceType" as attendance_type,
    {{ calven_id('"primaryLocationId"') }} as primary_location_id,
    "primaryLocationName" as primary_location_name,
    {{ calven_id('"bookingLocationId"') }} as booking_location_id,
    "bookingLocationName" as booking_location_name,
    {{ calven_id('"bookingLevelId"') }} as booking_level_id,
    {{ calven_id('"bookingZoneId"') }} as booking_zone_id,
    {{ calven_id('"bookingPlaceId"') }} as booking_place_id,
    "bookingPlaceName" as booking_place_name,
    {{ calven_id('"primaryGroupId"') }} as primary_group_id,
    "primaryGroupName" as primary_group_name,
    "bookingSource" as booking_source,
    "bookingReasonCode" as booking_reason_code,
    "onWaitlist" as on_waitlist,
    -- The day's office: where the desk is booked, else the user's primary location.
    coalesce({{ calven_id('"bookingLocationId"') }}, {{ calven_id('"primaryLocationId"') }}) as location_id
from ({{ latest_row(source('calven', 'bookings_attendance'), ['"userId"', '"day"']) }}) as b
