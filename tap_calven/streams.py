"""The seven warehouse streams: each class is one row of docs/contract.md §2.

Token-family paths are given; `auth_method: basic` adds `/basic` (in client.py, once).
Request parameters map an API parameter to the setting that feeds it.
"""

from __future__ import annotations

from tap_calven.client import CalvenStream


class UsersStream(CalvenStream):
    """All users of the tenant."""

    name = "users"
    path = "/v1/analytics/users"
    primary_keys = ("userId",)


class GroupsStream(CalvenStream):
    """Groups (departments, teams). The path is assumed: a 404 skips the stream."""

    name = "groups"
    path = "/v1/analytics/groups"
    primary_keys = ("groupId",)
    path_is_assumed = True


class LocationsStream(CalvenStream):
    """Locations (offices)."""

    name = "locations"
    path = "/v1/analytics/locations"
    primary_keys = ("locationId",)


class DesksStream(CalvenStream):
    """Desks (places) with their zone, level and location."""

    name = "desks"
    path = "/v1/analytics/desks"
    primary_keys = ("deskId",)


class BookingsAttendanceStream(CalvenStream):
    """One row per user per day: plan, booking and attendance; reads ahead by the horizon."""

    name = "bookings_attendance"
    path = "/v1/analytics/user-booking-attendance"
    primary_keys = ("userId", "day")
    replication_key = "day"
    reads_horizon = True
    per_location_param = "locationId"


class PresenceStream(CalvenStream):
    """Individual presence events, selected by the UTC date of `timestamp`."""

    name = "presence"
    path = "/v1/analytics/presence"
    primary_keys = ("sourceId", "eventId")
    replication_key = "timestamp"
    list_params = {"locationIds": "location_ids", "userIds": "user_ids"}


class UserActionsLogStream(CalvenStream):
    """Changes to users' plans and bookings, selected by the UTC date of `timestamp`."""

    name = "user_actions_log"
    path = "/v1/analytics/change-log/user"
    primary_keys = ("actionId",)
    replication_key = "timestamp"
    list_params = {"userIds": "user_ids"}


#: The stream list, in the order of Calven's docs: the tap, `meltano.yml`'s check and the
#: tests all read it from here.
STREAM_TYPES: tuple[type[CalvenStream], ...] = (
    UsersStream,
    GroupsStream,
    LocationsStream,
    DesksStream,
    BookingsAttendanceStream,
    PresenceStream,
    UserActionsLogStream,
)
# The SDK types `name` as an instance attribute; each class above sets it on the class.
STREAM_NAMES: tuple[str, ...] = tuple(t.name for t in STREAM_TYPES)  # type: ignore[misc]
