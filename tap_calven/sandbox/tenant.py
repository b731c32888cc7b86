"""The sandbox's deterministic synthetic tenant: a company that looks like a real Calven customer.

Everything derives from ``seed`` and the tenant's size, so two tenants built with the same
arguments (and the same ``today``) serve byte-identical responses. Dimension tables (locations,
levels, zones, desks, groups, users) are built eagerly; the per-day data (bookings and
attendance, presence events, user actions) is generated lazily, one day at a time, and kept
pre-serialised as JSON bytes so that serving a 30-day window is a matter of joining bytes.

Field sets follow docs/contract.md §2; the shapes of groups, desks, presence and the user
actions log are assumptions (Calven does not document them).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

__all__ = ["FULL_TABLE_STREAMS", "STREAMS", "WINDOWED_STREAMS", "Tenant"]

FULL_TABLE_STREAMS = ("users", "groups", "locations", "desks")
WINDOWED_STREAMS = ("bookings_attendance", "presence", "user_actions_log")
STREAMS = FULL_TABLE_STREAMS + WINDOWED_STREAMS

#: Primary keys: drift never nulls or drops these.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "users": ("userId",),
    "groups": ("groupId",),
    "locations": ("locationId",),
    "desks": ("deskId",),
    "bookings_attendance": ("userId", "day"),
    "presence": ("sourceId", "eventId"),
    "user_actions_log": ("actionId",),
}

Record = dict[str, Any]
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

_OFFICES = (
    ("Headquarters Office", "San Francisco, California, USA"),
    ("New York", "350 Fifth Avenue, New York, USA"),
    ("London", "1 Poultry, London, UK"),
    ("Melbourne", "500 South Street, Melbourne, Australia"),
    ("Sydney", "1 Martin Place, Sydney, Australia"),
    ("Singapore", "8 Marina View, Singapore"),
    ("Berlin", "Friedrichstrasse 68, Berlin, Germany"),
    ("Toronto", "100 King Street West, Toronto, Canada"),
    ("Austin", "500 West 2nd Street, Austin, Texas, USA"),
    ("Dublin", "2 Grand Canal Square, Dublin, Ireland"),
)
_ZONE_NAMES = (
    "Engineering Zone",
    "Quiet Zone",
    "Collaboration Hub",
    "Sales Pod",
    "Focus Area",
    "Project Space",
    "Hot Desks",
    "Team Neighbourhood",
    "Window Row",
    "Garden Wing",
)
_DEPARTMENTS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("Engineering", 8, ("Platform", "Mobile", "Data", "Quality Assurance")),
    ("Product", 3, ("Product Management", "Design")),
    ("Sales", 5, ("Enterprise Sales", "SMB Sales", "Sales Operations")),
    ("Marketing", 3, ("Brand", "Growth", "Channel Marketing")),
    ("Customer Success", 4, ("Support", "Onboarding")),
    ("Finance", 2, ("Accounting", "FP&A")),
    ("People", 2, ("Recruiting", "People Operations")),
    ("Operations", 2, ("Facilities", "IT")),
    ("Legal", 1, ()),
)
_FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Priya",
    "Wei",
    "Aisha",
    "Mateo",
    "Yuki",
    "Lars",
    "Chloe",
    "Omar",
    "Ines",
    "Kofi",
    "Hannah",
    "Arjun",
    "Sofia",
    "Liam",
    "Noah",
    "Emma",
    "Olivia",
    "Ava",
    "Lucas",
    "Mia",
    "Ethan",
    "Zara",
]
_LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Nguyen",
    "Patel",
    "Chen",
    "Kim",
    "Okafor",
    "Silva",
    "Rossi",
    "Muller",
    "Kowalski",
    "Ivanova",
    "Haddad",
    "Sato",
    "Larsen",
    "Dubois",
    "Murphy",
    "OBrien",
    "Walker",
    "Hall",
    "Young",
]
_DOMAIN = "northwind.example"
_STATUSES = (("active", 88), ("inactive", 5), ("provisioned", 4), ("deprovisioned", 3))
# bookingSource -> (changedBy, bookingReasonCode, action reason)
_SOURCES = (
    ("user", "user", "userSelected", None),
    ("autoBooking", "autoBooking", "recurringBooking", "recurringBooking"),
    ("admin", "admin", "adminAssigned", "adminAssigned"),
    ("integration", "integration", "calendarSync", "calendarSync"),
)
_WEEKDAY_FACTOR = (0.8, 1.15, 1.2, 1.1, 0.6)
_PLAN_NAMES = {"o": "office", "r": "remote", "a": "away"}


def iso_day(day: dt.date) -> str:
    """Format a day as Calven's midnight-UTC date-time (``day`` field)."""
    return f"{_day_iso(day)}T00:00:00.000Z"


def _uuid(rng: random.Random) -> str:
    """A random (version 4 layout) lowercase UUID string drawn from ``rng``: fast and seeded."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_DAY_ISO: dict[dt.date, str] = {}


def _day_iso(day: dt.date) -> str:
    got = _DAY_ISO.get(day)
    if got is None:
        got = _DAY_ISO[day] = day.isoformat()
    return got


_MINUTES = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]


def _ts(day: dt.date, ms_of_day: int) -> str:
    """ISO timestamp with milliseconds and Z, ``ms_of_day`` after midnight UTC of ``day``."""
    minute, ms = divmod(ms_of_day, 60_000)
    return f"{_day_iso(day)}T{_MINUTES[minute]}:{ms // 1000:02d}.{ms % 1000:03d}Z"


@dataclass(eq=False)
class Desk:
    """A place: the finest bookable unit."""

    id: str
    name: str
    zone: Zone
    status: str


@dataclass(eq=False)
class Zone:
    """A neighbourhood on a level."""

    id: str
    name: str
    level: Level
    desks: list[Desk] = field(default_factory=list)


@dataclass(eq=False)
class Level:
    """A floor of an office."""

    id: str
    name: str
    office: Office
    zones: list[Zone] = field(default_factory=list)


@dataclass(eq=False)
class Office:
    """A Calven "location": the top of the hierarchy."""

    idx: int
    id: str
    name: str
    address: str
    levels: list[Level] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)


@dataclass(eq=False)
class Group:
    """A department or team."""

    id: str
    name: str
    type: str | None
    parent: Group | None
    status: str | None


@dataclass(eq=False)
class User:
    """A person, with the habits that drive their daily rows."""

    idx: int
    id: str
    email: str
    first: str
    last: str
    status: str
    onboarded: bool
    group: Group | None
    office: Office
    home_zone: Zone
    affinity: float
    badge: str


@dataclass(frozen=True)
class _Booking:
    """An office day's booking: where, and who made it and why."""

    office: Office
    zone: Zone | None
    desk: Desk | None
    changed_by: str
    reason: str | None


def _day_row(user: User, day: dt.date, plan: str) -> Record:
    """A bookings_attendance row with the plan set and nothing booked yet."""
    group = user.group
    row: Record = dict.fromkeys(_BOOKING_FIELDS)
    row.update(
        userId=user.id,
        primaryLocationId=user.office.id,
        primaryLocationName=user.office.name,
        day=iso_day(day),
        plan=plan,
        primaryGroupId=group.id if group else None,
        primaryGroupName=group.name if group else None,
    )
    return row


# The row's fields in the order Calven's docs list them.
_BOOKING_FIELDS = (
    "userId",
    "primaryLocationId",
    "primaryLocationName",
    "day",
    "plan",
    "bookingDepth",
    "attendanceType",
    "bookingLocationId",
    "bookingLocationName",
    "bookingLevelId",
    "bookingLevelName",
    "bookingZoneId",
    "bookingZoneName",
    "bookingPlaceId",
    "bookingPlaceName",
    "primaryGroupId",
    "primaryGroupName",
    "bookingGroupId",
    "bookingGroupName",
    "bookingSource",
    "bookingReasonCode",
    "onWaitlist",
)


@dataclass
class _UserDay:
    """One version of one user's day: the row, its presence events and its actions."""

    row: Record
    booking_office: int
    presence: list[tuple[str, Record]]
    actions: list[tuple[dt.date, str, Record]]
    signature: tuple[Any, ...]


@dataclass
class _Day:
    """The serialised data of one booking day (each blob stored once, selected by spans)."""

    rows: list[tuple[int, int, int]]  # user idx, primary office, booking office (-1: none)
    rows_packed: _Packed
    presence: list[tuple[int, int]]  # user idx (-1 = unmatched), office idx
    presence_packed: _Packed
    actions: dict[dt.date, list[tuple[str, int, bytes]]]  # ts day -> (ts, user idx, json)


@dataclass
class _Packed:
    """Comma-joined JSON records and each record's (start, end) in the blob."""

    blob: bytes
    spans: list[tuple[int, int]]

    def select(self, keep: Iterable[bool]) -> bytes:
        """The comma-joined records whose ``keep`` flag is true."""
        mv = memoryview(self.blob)
        return b",".join([mv[a:b] for (a, b), k in zip(self.spans, keep, strict=True) if k])


def _pack(chunks: list[bytes]) -> _Packed:
    spans: list[tuple[int, int]] = []
    pos = 0
    for c in chunks:
        spans.append((pos, pos + len(c)))
        pos += len(c) + 1
    return _Packed(b",".join(chunks), spans)


class Tenant:
    """A deterministic synthetic Calven tenant, generated lazily and served as JSON bytes."""

    def __init__(
        self,
        *,
        seed: int = 1,
        users: int = 40,
        locations: int = 3,
        past_days: int = 60,
        future_days: int = 21,
        today: dt.date | None = None,
        drift: bool = False,
    ) -> None:
        if users < 1 or locations < 1 or past_days < 0 or future_days < 0:
            raise ValueError("users and locations must be >= 1, past/future days >= 0")
        self.seed = seed
        self.today = today or dt.datetime.now(dt.timezone.utc).date()
        self.first_day = self.today - dt.timedelta(days=past_days)
        self.last_day = self.today + dt.timedelta(days=future_days)
        self.drift = drift
        # How far before a booking day its actions may be stamped: far enough to reach back
        # from the last future day to today (actions are never stamped in the future).
        self.lead_max = max(21, future_days + 7)
        self._lock = threading.RLock()
        self._days: dict[dt.date, _Day] = {}
        self._actions: dict[dt.date, tuple[list[int], _Packed]] = {}
        self._revisions: dict[dt.date, int] = {}
        rng = random.Random(f"calven-sandbox:{seed}:tenant")
        self._build_locations(rng, locations, users)
        self._build_groups(rng)
        self._build_users(rng, users)
        self.office_by_id = {o.id: o.idx for o in self.offices}
        self.user_by_id = {u.id: u.idx for u in self.users}
        # Office of every presence location id (office, level, zone, place).
        self.office_of: dict[str, int] = {}
        for o in self.offices:
            self.office_of[o.id] = o.idx
            for lv in o.levels:
                self.office_of[lv.id] = o.idx
                for z in lv.zones:
                    self.office_of[z.id] = o.idx
                    for d in z.desks:
                        self.office_of[d.id] = o.idx
        self.admins = [u for u in self.users if u.status == "active"][:3] or self.users[:1]
        self._sources = {
            "badge": _uuid(rng),
            "wifi": _uuid(rng),
            "sensor": _uuid(rng),
        }
        self._full: dict[str, bytes] = {
            "users": self._blob(self._drifted("users", [self._user_rec(u) for u in self.users])),
            "groups": self._blob(
                self._drifted("groups", [self._group_rec(g) for g in self.groups])
            ),
            "locations": self._blob(
                self._drifted("locations", [self._office_rec(o) for o in self.offices])
            ),
            "desks": self._blob(self._drifted("desks", [self._desk_rec(d) for d in self.desks])),
        }

    # ----------------------------------------------------------------- dimensions

    def _build_locations(self, rng: random.Random, n: int, users: int) -> None:
        self.offices: list[Office] = []
        self.desks: list[Desk] = []
        for i in range(n):
            name, address = (
                _OFFICES[i] if i < len(_OFFICES) else (f"Office {i + 1}", f"Site {i + 1}")
            )
            office = Office(i, _uuid(rng), name, address)
            self.offices.append(office)
            for lv_no in range(1, rng.randint(2, 4) + 1):
                level = Level(_uuid(rng), f"Level {lv_no}", office)
                office.levels.append(level)
                for zname in rng.sample(_ZONE_NAMES, rng.randint(2, 4)):
                    zone = Zone(_uuid(rng), zname, level)
                    level.zones.append(zone)
                    office.zones.append(zone)
        weights = self._office_weights(n)
        for o in self.offices:
            share = weights[o.idx] / sum(weights)
            per_zone = max(4, round(users * 0.55 * share / len(o.zones)))
            for zone in o.zones:
                floor = zone.level.name.split()[-1]
                letter = chr(65 + zone.level.zones.index(zone))
                for k in range(1, per_zone + rng.randint(0, 3) + 1):
                    status = "active" if rng.random() < 0.97 else "inactive"
                    desk = Desk(_uuid(rng), f"L{floor}{letter}-{k:02d}", zone, status)
                    zone.desks.append(desk)
                    self.desks.append(desk)

    @staticmethod
    def _office_weights(n: int) -> list[int]:
        return [4 if i == 0 else 2 if i < 3 else 1 for i in range(n)]

    def _build_groups(self, rng: random.Random) -> None:
        root = Group(_uuid(rng), "Northwind", "Company", None, "active")
        self.groups: list[Group] = [root]
        self._teams: list[Group] = []
        self._team_weights: list[int] = []
        for dept_name, weight, teams in _DEPARTMENTS:
            dept = Group(_uuid(rng), dept_name, "Department", root, "active")
            self.groups.append(dept)
            members = [Group(_uuid(rng), t, "Team", dept, "active") for t in teams] or [dept]
            for team in members:
                if team is not dept:
                    self.groups.append(team)
                self._teams.append(team)
                self._team_weights.append(weight * 10 // len(members) + 1)
        self.groups.append(Group(_uuid(rng), "Special Projects", None, root, "inactive"))

    def _build_users(self, rng: random.Random, n: int) -> None:
        self.users: list[User] = []
        weights = self._office_weights(len(self.offices))
        statuses = [s for s, _ in _STATUSES]
        status_w = [w for _, w in _STATUSES]
        for i in range(n):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            status = rng.choices(statuses, status_w)[0]
            office = rng.choices(self.offices, weights)[0]
            group = None if rng.random() < 0.02 else rng.choices(self._teams, self._team_weights)[0]
            onboarded = status != "provisioned" and (status != "active" or rng.random() < 0.95)
            self.users.append(
                User(
                    idx=i,
                    id=_uuid(rng),
                    email=f"{first.lower()}.{last.lower()}{i + 1}@{_DOMAIN}",
                    first=first,
                    last=last,
                    status=status,
                    onboarded=onboarded,
                    group=group,
                    office=office,
                    home_zone=rng.choice(office.zones),
                    affinity=rng.choices((0.15, 0.35, 0.55, 0.8), (2, 3, 3, 2))[0],
                    badge=f"B{rng.randrange(10**6):06d}",
                )
            )

    @staticmethod
    def _user_rec(u: User) -> Record:
        return {
            "userId": u.id,
            "email": u.email,
            "firstName": u.first,
            "lastName": u.last,
            "userName": u.email,
            "onboarded": u.onboarded,
            "primaryGroupId": u.group.id if u.group else None,
            "primaryLocationId": u.office.id,
            "status": u.status,
        }

    @staticmethod
    def _group_rec(g: Group) -> Record:
        return {
            "groupId": g.id,
            "groupName": g.name,
            "groupType": g.type,
            "parentGroupId": g.parent.id if g.parent else None,
            "status": g.status,
        }

    @staticmethod
    def _office_rec(o: Office) -> Record:
        return {
            "locationId": o.id,
            "locationName": o.name,
            "address": o.address,
            "status": "active",
        }

    @staticmethod
    def _desk_rec(d: Desk) -> Record:
        lv = d.zone.level
        return {
            "deskId": d.id,
            "deskName": d.name,
            "zoneId": d.zone.id,
            "zoneName": d.zone.name,
            "levelId": lv.id,
            "levelName": lv.name,
            "locationId": lv.office.id,
            "locationName": lv.office.name,
            "status": d.status,
        }

    # ----------------------------------------------------------------- drift

    def _drifted(self, stream: str, recs: list[Record]) -> list[Record]:
        if self.drift:
            drng = random.Random(f"calven-sandbox:{self.seed}:drift:{stream}:{len(recs)}")
            for rec in recs:
                self._drift_one(stream, drng, rec)
        return recs

    @staticmethod
    def _drift_one(stream: str, rng: random.Random, rec: Record) -> None:
        """Mimic a drifting API: unexpected new fields, optional fields null or missing."""
        r = rng.random()
        if r < 0.3:
            rec["syncedAt"] = "2024-01-01T00:00:00.000Z"
            rec["tenantRegion"] = "usce1"
        elif r < 0.4:
            rec["labels"] = ["sandbox", stream]
            rec["meta"] = {"schemaVersion": 2, "experimental": True}
        optional = [k for k in rec if k not in PRIMARY_KEYS[stream]]
        r = rng.random()
        if optional and r < 0.15:
            rec[rng.choice(optional)] = None
        elif optional and r < 0.3:
            del rec[rng.choice(optional)]
        elif optional and r < 0.38:
            name = rng.choice(optional)
            rec[name] = _other_type(rec[name])

    @staticmethod
    def _blob(recs: Iterable[Record]) -> bytes:
        return b"[" + b",".join(_encode(r) for r in recs) + b"]"

    # ----------------------------------------------------------------- calendar

    def booking_days(self) -> list[dt.date]:
        """Weekdays in [first_day, last_day]: the days that have bookings rows."""
        n = (self.last_day - self.first_day).days + 1
        days = (self.first_day + dt.timedelta(days=i) for i in range(n))
        return [d for d in days if d.weekday() < 5]

    def has_day(self, day: dt.date) -> bool:
        """Whether ``day`` carries bookings rows."""
        return self.first_day <= day <= self.last_day and day.weekday() < 5

    def full_table(self, stream: str) -> bytes:
        """The complete JSON body of a full-table stream."""
        return self._full[stream]

    # ----------------------------------------------------------------- per-day generation

    def day(self, day: dt.date) -> _Day:
        """The generated (cached) data of one booking day."""
        with self._lock:
            got = self._days.get(day)
            if got is None:
                got = self._days[day] = self._generate_day(day)
            return got

    def _revised_users(self, day: dt.date) -> dict[int, int]:
        """User idx -> how many of the day's revisions changed that user."""
        out: dict[int, int] = {}
        active = [u.idx for u in self.users if u.status == "active"]
        if not active:
            return out
        for rev in range(1, self._revisions.get(day, 0) + 1):
            rng = random.Random(f"calven-sandbox:{self.seed}:revise:{day}:{rev}")
            picked = rng.sample(active, max(1, len(active) // 10))
            for idx in picked:
                out[idx] = out.get(idx, 0) + 1
        return out

    def _generate_day(self, day: dt.date) -> _Day:
        rng = random.Random(f"calven-sandbox:{self.seed}:day:{day}")
        drng = random.Random(f"calven-sandbox:{self.seed}:drift:{day}")
        revised = self._revised_users(day)
        taken: set[str] = set()
        rows: list[tuple[int, int, int, bytes]] = []
        presence: list[tuple[str, int, int, bytes]] = []
        actions: dict[dt.date, list[tuple[str, int, bytes]]] = {}
        drift = self.drift
        for user in self.users:
            ud = self._user_day(rng, user, day, taken)
            for k in range(1, revised.get(user.idx, 0) + 1):
                ud = self._revise(user, day, k, ud)
            row = ud.row
            if drift:
                self._drift_one("bookings_attendance", drng, row)
            rows.append((user.idx, user.office.idx, ud.booking_office, _encode(row)))
            uidx = user.idx
            for ts, ev in ud.presence:
                matched = uidx if ev["userId"] is not None else -1
                office = self.office_of[ev["locationId"]]
                if drift:
                    self._drift_one("presence", drng, ev)
                presence.append((ts, matched, office, _encode(ev)))
            for ts_day, ts, act in ud.actions:
                if drift:
                    self._drift_one("user_actions_log", drng, act)
                actions.setdefault(ts_day, []).append((ts, uidx, _encode(act)))
        presence.sort(key=lambda p: p[0])
        return _Day(
            rows=[(u, p, b) for u, p, b, _ in rows],
            rows_packed=_pack([r[3] for r in rows]),
            presence=[(u, o) for _, u, o, _ in presence],
            presence_packed=_pack([p[3] for p in presence]),
            actions=actions,
        )

    def _user_day(
        self, rng: random.Random, user: User, day: dt.date, taken: set[str] | None
    ) -> _UserDay:
        """Draw one user's plan, booking, attendance, presence and actions for one day.

        The draws happen in a fixed order (plan, then the booking or the day at home), so
        a seed always gives the same tenant.
        """
        plan = self._draw_plan(rng, user, day)
        row = _day_row(user, day, plan)
        booking_office = -1
        presence: list[tuple[str, Record]] = []
        actions: list[tuple[dt.date, str, Record]] = []
        if plan == "o":
            booking = self._book(rng, user, row, taken)
            booking_office = booking.office.idx
            row["attendanceType"] = self._draw_attendance(rng, past=day < self.today)
            actions = self._booking_actions(rng, user, day, booking)
            if row["attendanceType"] == "confirmed":
                presence = self._presence(
                    rng, user, day, booking.office, booking.zone, booking.desk
                )
        elif user.status == "active":
            if plan == "r" and day < self.today and rng.random() < 0.03:  # a walk-in
                row["attendanceType"] = "walkIn"
                presence = self._presence(rng, user, day, user.office, None, None)
            actions = self._home_actions(rng, user, day, plan)
        sig = (
            plan,
            row["attendanceType"],
            row["bookingLocationId"],
            row["bookingZoneId"],
            row["bookingPlaceId"],
        )
        return _UserDay(row, booking_office, presence, actions, sig)

    @staticmethod
    def _draw_plan(rng: random.Random, user: User, day: dt.date) -> str:
        """Office (`o`), remote (`r`) or away (`a`): active users by affinity and weekday."""
        if user.status != "active":
            return "r" if user.status == "provisioned" else "a"
        p_office = user.affinity * _WEEKDAY_FACTOR[day.weekday()] * 0.93
        r = rng.random()
        return "a" if r < 0.07 else "o" if r < 0.07 + p_office else "r"

    def _book(
        self, rng: random.Random, user: User, row: Record, taken: set[str] | None
    ) -> _Booking:
        """Book an office day: office, zone, maybe a desk (or the waitlist); fill the row."""
        rand = rng.random
        office = user.office
        b_office = office if rand() < 0.92 else rng.choice(self.offices)
        zone: Zone | None = (
            user.home_zone if b_office is office and rand() < 0.7 else rng.choice(b_office.zones)
        )
        r = rand()
        depth = 3 if r < 0.5 else 2 if r < 0.8 else 1
        waitlist = False
        desk: Desk | None = None
        if depth == 3 and zone is not None:
            desk = self._free_desk(rng, zone, taken)
            if desk is None:
                depth, waitlist = 2, True
        if depth == 1:
            zone = None
        r = rand()
        src, changed_by, reason_code, reason = _SOURCES[
            0 if r < 0.82 else 1 if r < 0.92 else 2 if r < 0.96 else 3
        ]
        row["bookingDepth"] = depth
        row["bookingLocationId"] = b_office.id
        row["bookingLocationName"] = b_office.name
        if zone is not None:
            row["bookingLevelId"] = zone.level.id
            row["bookingLevelName"] = zone.level.name
            row["bookingZoneId"] = zone.id
            row["bookingZoneName"] = zone.name
        if desk is not None:
            row["bookingPlaceId"] = desk.id
            row["bookingPlaceName"] = desk.name
        if user.group is not None:
            row["bookingGroupId"] = user.group.id
            row["bookingGroupName"] = user.group.name
        row["bookingSource"] = src
        row["bookingReasonCode"] = reason_code
        row["onWaitlist"] = waitlist
        return _Booking(b_office, zone, desk, changed_by, reason)

    @staticmethod
    def _draw_attendance(rng: random.Random, *, past: bool) -> str | None:
        """How a booked day was attended; upcoming days are at most pre-confirmed."""
        r = rng.random()
        if past:
            return "confirmed" if r < 0.72 else "unconfirmed" if r < 0.88 else "noShow"
        return "unconfirmed" if r < 0.3 else None

    def _booking_actions(
        self, rng: random.Random, user: User, day: dt.date, booking: _Booking
    ) -> list[tuple[dt.date, str, Record]]:
        """The log of an office day: plan and booking, and one time in ten a desk move."""
        office, zone, desk = booking.office, booking.zone, booking.desk
        what = f"{desk.name if desk else zone.name if zone else office.name}, {office.name}"
        lead_lo = max(0, (day - self.today).days)
        t1 = self._action_time(rng, day, lead_lo)
        by, reason = booking.changed_by, booking.reason
        by_id = self._changed_by_id(rng, user, by)

        def act(
            when: tuple[dt.date, int],
            kind: str,
            text: str,
            by: str,
            by_id: str | None,
            why: str | None,
        ) -> None:
            actions.append(self._action(rng, user, day, when, kind, text, by, by_id, why))

        actions: list[tuple[dt.date, str, Record]] = []
        if rng.random() < 0.1 and desk is not None:
            t0 = self._action_time(rng, day, lead_lo, before=t1)
            first = zone.name if zone else office.name
            act(t0, "planChanged", "Plan set to office", by, by_id, reason)
            act(t0, "bookingCreated", f"Booked {first}, {office.name}", by, by_id, reason)
            act(t1, "bookingChanged", f"Booking moved to {what}", "user", user.id, None)
        else:
            act(t1, "planChanged", "Plan set to office", by, by_id, reason)
            act(t1, "bookingCreated", f"Booked {what}", by, by_id, reason)
        return actions

    def _home_actions(
        self, rng: random.Random, user: User, day: dt.date, plan: str
    ) -> list[tuple[dt.date, str, Record]]:
        """The log of a day away or remote: time off, a cancelled booking, or a plan change."""
        lead_lo = max(0, (day - self.today).days)
        r = rng.random()
        actions: list[tuple[dt.date, str, Record]] = []

        def act(
            when: tuple[dt.date, int],
            kind: str,
            text: str,
            by: str,
            by_id: str | None,
            why: str | None,
        ) -> None:
            actions.append(self._action(rng, user, day, when, kind, text, by, by_id, why))

        if plan == "a":
            by, reason = ("integration", "timeOff") if r < 0.7 else ("user", None)
            t1 = self._action_time(rng, day, lead_lo)
            act(
                t1,
                "planChanged",
                "Plan set to away",
                by,
                self._changed_by_id(rng, user, by),
                reason,
            )
        elif r < 0.08:
            t1 = self._action_time(rng, day, lead_lo)
            t0 = self._action_time(rng, day, lead_lo, before=t1)
            place = f"{user.home_zone.name}, {user.office.name}"
            act(t0, "planChanged", "Plan set to office", "user", user.id, None)
            act(t0, "bookingCreated", f"Booked {place}", "user", user.id, None)
            act(t1, "planChanged", "Plan set to remote", "user", user.id, None)
            act(
                t1,
                "bookingCancelled",
                f"Booking cancelled: {place}",
                "user",
                user.id,
                "planChanged",
            )
        elif r < 0.35:
            t1 = self._action_time(rng, day, lead_lo)
            act(t1, "planChanged", "Plan set to remote", "user", user.id, None)
        return actions

    @staticmethod
    def _free_desk(rng: random.Random, zone: Zone, taken: set[str] | None) -> Desk | None:
        """An active desk of ``zone`` nobody else has booked that day (None: zone full)."""
        taken = taken if taken is not None else set()
        desks = zone.desks
        for _ in range(8):
            desk = desks[rng.randrange(len(desks))]
            if desk.status == "active" and desk.id not in taken:
                break
        else:
            free = [d for d in desks if d.status == "active" and d.id not in taken]
            if not free:
                return None
            desk = rng.choice(free)
        taken.add(desk.id)
        return desk

    def _action_time(
        self,
        rng: random.Random,
        day: dt.date,
        lead_lo: int,
        before: tuple[dt.date, int] | None = None,
    ) -> tuple[dt.date, int]:
        """A (day, ms-of-day) instant on or before ``day`` and never after ``today``."""
        if before is not None:
            b_day, b_ms = before
            back = rng.randint(0, 3)
            if back == 0 or b_day - dt.timedelta(days=back) < day - dt.timedelta(
                days=self.lead_max
            ):
                return b_day, rng.randrange(max(1, b_ms))
            return b_day - dt.timedelta(days=back), rng.randrange(86_400_000)
        lead = rng.randint(lead_lo, min(self.lead_max, lead_lo + 14))
        return day - dt.timedelta(days=lead), rng.randrange(6 * 3_600_000, 23 * 3_600_000)

    def _changed_by_id(self, rng: random.Random, user: User, changed_by: str) -> str | None:
        if changed_by == "user":
            return user.id
        if changed_by == "admin":
            return rng.choice(self.admins).id
        return None

    @staticmethod
    def _action(
        rng: random.Random,
        user: User,
        day: dt.date,
        when: tuple[dt.date, int],
        action_type: str,
        description: str,
        changed_by: str,
        changed_by_id: str | None,
        reason: str | None,
    ) -> tuple[dt.date, str, Record]:
        ts = _ts(when[0], when[1])
        return (
            when[0],
            ts,
            {
                "actionId": _uuid(rng),
                "timestamp": ts,
                "userId": user.id,
                "day": iso_day(day),
                "actionType": action_type,
                "description": f"{description} for {day.isoformat()}",
                "changedBy": changed_by,
                "changedByUserId": changed_by_id,
                "reason": reason,
            },
        )

    def _presence(
        self,
        rng: random.Random,
        user: User,
        day: dt.date,
        office: Office,
        zone: Zone | None,
        desk: Desk | None,
    ) -> list[tuple[str, Record]]:
        """1-3 events at the booked office, somewhere in the booked zone/place when known."""
        r = rng.random()
        n = 1 if r < 0.5 else 2 if r < 0.85 else 3
        times = sorted(rng.randrange(7 * 3_600_000, 19 * 3_600_000) for _ in range(n))
        matched = rng.random() >= 0.02
        out: list[tuple[str, Record]] = []
        for ms in times:
            kind = rng.choice(("badge", "wifi", "sensor") if desk else ("badge", "wifi"))
            where = zone or rng.choice(office.zones)
            if kind == "badge":
                loc_id, loc_type, source_user = office.id, "location", user.badge
            elif kind == "wifi":
                if rng.random() < 0.5:
                    loc_id, loc_type = where.level.id, "level"
                else:
                    loc_id, loc_type = where.id, "zone"
                source_user = user.email
            else:
                assert desk is not None
                loc_id, loc_type, source_user = desk.id, "place", None
            ts = _ts(day, ms)
            out.append(
                (
                    ts,
                    {
                        "sourceId": self._sources[kind],
                        "eventId": _uuid(rng),
                        "timestamp": ts,
                        "userId": user.id if matched else None,
                        "userEmail": user.email if matched and kind != "sensor" else None,
                        "sourceUserId": source_user,
                        "locationId": loc_id,
                        "locationType": loc_type,
                    },
                )
            )
        return out

    def _revise(self, user: User, day: dt.date, k: int, prev: _UserDay) -> _UserDay:
        """Version ``k`` of a user's day: a visibly different row plus the actions that say so."""
        new = prev
        for attempt in range(50):
            rng = random.Random(f"calven-sandbox:{self.seed}:rev:{day}:{user.idx}:{k}:{attempt}")
            new = self._user_day(rng, user, day, None)
            if new.signature != prev.signature:
                break
        rng = random.Random(f"calven-sandbox:{self.seed}:revact:{day}:{user.idx}:{k}")
        when_day = min(day, self.today)
        when = (when_day, 23 * 3_600_000 + min(k, 50) * 60_000 + rng.randrange(60_000))
        actions = list(prev.actions)
        old_plan, new_plan = prev.signature[0], new.signature[0]
        admin = rng.choice(self.admins).id
        if old_plan != new_plan:
            actions.append(
                self._action(
                    rng,
                    user,
                    day,
                    when,
                    "planChanged",
                    f"Plan set to {_PLAN_NAMES[new_plan]}",
                    "admin",
                    admin,
                    "adminCorrection",
                )
            )
            if old_plan == "o":
                actions.append(
                    self._action(
                        rng,
                        user,
                        day,
                        when,
                        "bookingCancelled",
                        "Booking cancelled",
                        "admin",
                        admin,
                        "adminCorrection",
                    )
                )
            if new_plan == "o":
                actions.append(
                    self._action(
                        rng,
                        user,
                        day,
                        when,
                        "bookingCreated",
                        "Booking created",
                        "admin",
                        admin,
                        "adminCorrection",
                    )
                )
        elif prev.signature[2:] != new.signature[2:]:
            actions.append(
                self._action(
                    rng,
                    user,
                    day,
                    when,
                    "bookingChanged",
                    "Booking moved",
                    "admin",
                    admin,
                    "adminCorrection",
                )
            )
        new.actions = actions
        return new

    def revise(self, days: Iterable[dt.date]) -> None:
        """Change some active users' rows on ``days`` (one more revision each); drop caches."""
        with self._lock:
            for day in days:
                self._revisions[day] = self._revisions.get(day, 0) + 1
                self._days.pop(day, None)
                for back in range(self.lead_max + 1):
                    self._actions.pop(day - dt.timedelta(days=back), None)

    # ----------------------------------------------------------------- selections

    def bookings(self, day: dt.date, office: int | None) -> bytes:
        """Comma-joined rows of one day, optionally for one office (primary or booked)."""
        if not self.has_day(day):
            return b""
        d = self.day(day)
        if office is None:
            return d.rows_packed.blob
        return d.rows_packed.select(p == office or b == office for _, p, b in d.rows)

    def presence(self, day: dt.date, offices: set[int] | None, users: set[int] | None) -> bytes:
        """Comma-joined presence events whose timestamp falls on ``day``."""
        if not self.has_day(day) or day >= self.today:
            return b""
        d = self.day(day)
        if offices is None and users is None:
            return d.presence_packed.blob
        return d.presence_packed.select(
            (offices is None or o in offices) and (users is None or u in users)
            for u, o in d.presence
        )

    def actions(self, day: dt.date, users: set[int] | None) -> bytes:
        """Comma-joined user actions stamped on ``day`` (from every booking day they concern)."""
        with self._lock:
            got = self._actions.get(day)
            if got is None:
                items: list[tuple[str, int, bytes]] = []
                for i in range(self.lead_max + 1):
                    bday = day + dt.timedelta(days=i)
                    if self.has_day(bday):
                        items.extend(self.day(bday).actions.get(day, ()))
                items.sort(key=lambda a: a[0])
                got = self._actions[day] = (
                    [u for _, u, _ in items],
                    _pack([b for _, _, b in items]),
                )
        if users is None:
            return got[1].blob
        return got[1].select(u in users for u in got[0])

    def window(
        self,
        stream: str,
        start: dt.date,
        end: dt.date,
        *,
        office: int | None = None,
        offices: set[int] | None = None,
        users: set[int] | None = None,
    ) -> list[bytes]:
        """Per-day comma-joined chunks (empty days omitted) of a windowed stream."""
        out: list[bytes] = []
        day = start
        while day <= end:
            if stream == "bookings_attendance":
                chunk = self.bookings(day, office)
            elif stream == "presence":
                chunk = self.presence(day, offices, users)
            elif stream == "user_actions_log":
                chunk = self.actions(day, users)
            else:
                raise ValueError(f"not a windowed stream: {stream}")
            if chunk:
                out.append(chunk)
            day += dt.timedelta(days=1)
        return out

    def date_range(self, stream: str) -> tuple[dt.date, dt.date]:
        """First and last day that hold data for a windowed stream."""
        days = self.booking_days()
        if stream == "bookings_attendance":
            if days:
                return days[0], days[-1]
        elif stream == "presence":
            past = [d for d in days if d < self.today and self.day(d).presence]
            if past:
                return past[0], past[-1]
        elif stream == "user_actions_log":
            if days:
                lo = days[0] - dt.timedelta(days=self.lead_max)
                hi = self.today
                while lo <= hi and not self.actions(lo, None):
                    lo += dt.timedelta(days=1)
                while hi >= lo and not self.actions(hi, None):
                    hi -= dt.timedelta(days=1)
                if lo <= hi:
                    return lo, hi
        else:
            raise ValueError(f"not a windowed stream: {stream}")
        raise ValueError(f"the tenant has no {stream} data")


def join_array(chunks: Sequence[bytes]) -> list[bytes]:
    """Body parts of a JSON array made of comma-joined chunks."""
    parts: list[bytes] = [b"["]
    for i, c in enumerate(chunks):
        if i:
            parts.append(b",")
        parts.append(c)
    parts.append(b"]")
    return parts


def decode_array(parts: Sequence[bytes]) -> list[Record]:
    """Decode body parts back into records (the ground truth the tests compare with)."""
    out = _decode(b"".join(parts))
    assert isinstance(out, list)
    return out


def _other_type(value: object) -> object:
    """The same information as another JSON type, as a drifting API might send it.

    A number becomes its digits, a boolean `"yes"`/`"no"`, an ISO date-time
    `DD/MM/YYYY hh:mm`, any other string an object around it; null and containers
    stay as they are.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return {"text": value}
        return moment.strftime("%d/%m/%Y %H:%M")
    return value
