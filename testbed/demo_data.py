"""A deterministic demo school: pupils, staff and parents in Moodle, requests in WordPress.

`generate(size, seed)` builds the school as plain Python data (no database): `size` is the
number of WordPress requests, and everything else scales with it. `load(cfg, school)` writes it
into the two databases `testbed.mariadb.create(cfg)` made, with batched inserts. `describe()`
counts it. Same size and seed give the same school, in any process.

Every request carries an expectation, `school.expectations[request_id]`, a dict:

    status, request_type   as in the row
    username               lower(trim(parent_email)): the parent's Moodle username
    children               one outcome per named child (child, child2, child3 in order):
                           ("linked", pupil user id) | ("ambiguous",) | ("unmatched",)
                           (never ("namesake",): see the rule below)
    cases                  one label per child: why it is there (CASES below)
    intended               one user id or None per child: whom the parent meant (the real
                           pupil for wrong_tg, the staff member for staff_only, ...)
    auth_row               this request has an auth row of its own
    existing_parent_id     the existing 'db' Moodle user with this username, or None
    new_account            approved, with an auth row and no existing account: a cycle
                           should leave a new Moodle account with this username
    messy_email            parent_email is in Mixed Case and/or has surrounding spaces

`children` follow the reference matching rule, checked against the data at generation time:

    a named child matches the users who are members of the 'pupils' cohort, have
    deleted = 0 and suspended = 0, and whose firstname, lastname and department equal the
    request's child_fname, child_sname and child_tg as MariaDB's utf8mb4_unicode_ci compares
    them (case and accents ignored, trailing spaces ignored).
    One match: linked; none: unmatched; several: ambiguous. One match is still a guess
    ("namesake") when another not-deleted user who is not a candidate (a suspended pupil,
    staff, a parent other than the requester's own account) has the same name and department:
    the generator makes no such child, and fails if its random names ever do.

User ids, context ids and request ids are those a fresh `mariadb.create()` leaves next:
users from 3 (guest 1, admin 2), contexts from 2 (system 1), requests from 1. If the
databases already hold rows, `load()` shifts the school's ids past them (in place) first,
so after `load()` the ids in the school are always those in the databases.
"""

from __future__ import annotations

import calendar
import hashlib
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from include.parent_provisioning.requests import CANNOT_LOG_IN, CHILDREN_NOT_LINKED, NEW_ACCOUNT, STATUSES, UPLOADED
from testbed import mariadb
from testbed.config import TestBedConfig

# What the demo school has: each request type the plugin's form and its upload write, each status but
# the plugin's transient "deleting".
DEMO_REQUEST_TYPES = (NEW_ACCOUNT, CANNOT_LOG_IN, CHILDREN_NOT_LINKED, UPLOADED)
DEMO_STATUSES = tuple(s for s in STATUSES if s != "deleting")
AUTH_DESCRIPTION = mariadb.AUTH_DESCRIPTION

LINKED, AMBIGUOUS, UNMATCHED, NAMESAKE = "linked", "ambiguous", "unmatched", "namesake"
# Why a child is named in a request. The first group should end up linked, the rest not.
CASES_LINKED = (
    "ok",  # an ordinary pupil (unique name), named with the right tutor group
    "twin",  # one of twins: same surname and tutor group as the other, different first name
    "namesake_other_group",  # shares first name + surname with a pupil in another tutor group
    "staff_namesake",  # shares first name + surname with a staff member
    "parent_namesake",  # shares first name + surname with an existing parent (father and son)
    "already_linked",  # missing-children request: this child is already linked to the parent
    "other_school",  # a trust only: a sibling at another of the trust's schools, named on the same request
)
CASES_NOT_LINKED = (
    "no_such_pupil",  # the name matches no user at all
    "wrong_tg",  # a real pupil (see intended) named with another, existing, tutor group
    "ambiguous_pair",  # two pupils with this first name + surname in this tutor group
    "staff_only",  # the name is only a staff member's (intended = the staff member)
    "suspended_pupil",  # only a suspended pupil has this name (intended = that pupil)
    "deleted_pupil",  # only a deleted pupil has this name (intended = that pupil)
    "bogus",  # a made-up child on a bogus request
)
CASES = CASES_LINKED + CASES_NOT_LINKED

PUPIL_DOMAIN = "pupils.school.test"
STAFF_DOMAIN = "school.test"
PARENT_DOMAINS = ("example.org", "example.com", "example.net", "mail.example.org", "home.example.net")
COHORT = {"name": "Pupils", "idnumber": "pupils", "description": "Every pupil on roll"}
INSTITUTION = "Demo School"
FIRST_USER_ID = 3
FIRST_CONTEXT_ID = 2
FIRST_REQUEST_ID = 1
ADMIN_ID = 2
MIN_SIZE = 40
# One school up to SCHOOL_MAX requests (50,000 pupils: its tutor group names run out past about 23,000);
# a bigger size is a multi-academy trust sharing one Moodle: schools of TRUST_SCHOOL requests on average
# (2,500 pupils), up to TRUST_MAX requests in all.
SCHOOL_MAX = 20_000
TRUST_SCHOOL = 1_000
TRUST_MAX = 200_000
TRUST_SIBLINGS = 0.04  # of a trust school's plain approved requests: one more child, at another school
CHUNK = 2000

START = datetime(2026, 9, 1, 7, 0, 0)  # the autumn term's requests: Sept to Nov 2026
END = datetime(2026, 11, 30, 18, 0, 0)

# fmt: off
PUPIL_FIRST = [
    "Olivia", "Amelia", "Isla", "Ava", "Ivy", "Freya", "Lily", "Florence", "Mia", "Willow", "Rosie",
    "Sophia", "Isabella", "Grace", "Daisy", "Sienna", "Poppy", "Elsie", "Emily", "Ella", "Evelyn",
    "Phoebe", "Sofia", "Evie", "Charlotte", "Harper", "Millie", "Matilda", "Maya", "Sophie", "Alice",
    "Emilia", "Isabelle", "Ruby", "Luna", "Maisie", "Aria", "Penelope", "Mila", "Bonnie", "Eva",
    "Hallie", "Eliza", "Ada", "Violet", "Esme", "Arabella", "Imogen", "Jessica", "Delilah", "Zoë",
    "Siân", "Chloë", "Anaïs", "Renée", "Inés", "Niamh", "Saoirse", "Aoife", "Ffion", "Elin", "Rhiannon",
    "Cerys", "Megan", "Hannah", "Lucy", "Holly", "Amber", "Layla", "Aisha", "Fatima", "Maryam", "Zara",
    "Priya", "Ananya", "Mei", "Yasmin", "Leah", "Nia", "Abigail", "Scarlett", "Erin", "Katie", "Lauren",
    "Beatrice", "Clara", "Harriet", "Martha", "Nancy", "Orla", "Thea", "Iris", "Lottie", "Edith",
    "Elodie", "Gabriela", "Natalia", "Zuzanna", "Ama", "Chiamaka", "Adaeze", "Hiba", "Noor", "Amira",
    "Jasmine", "Kiera", "Tilly", "Francesca", "Lola", "Mabel", "Muhammad", "Noah", "Oliver", "George",
    "Leo", "Arthur", "Oscar", "Theodore", "Freddie", "Theo", "Archie", "Henry", "Alfie", "Jack",
    "Charlie", "Finley", "Lucas", "Thomas", "Jacob", "Isaac", "Tommy", "Edward", "James", "William",
    "Harry", "Arlo", "Rory", "Reuben", "Teddy", "Albert", "Max", "Ethan", "Elijah", "Hugo", "Joshua",
    "Mason", "Luca", "Jude", "Louie", "Ezra", "Sebastian", "Samuel", "Daniel", "Benjamin", "Alexander",
    "Dylan", "Adam", "Harrison", "Joseph", "Jaxon", "Logan", "Ronnie", "Riley", "Harvey", "Frankie",
    "Toby", "Jenson", "Ollie", "Ibrahim", "Yusuf", "Omar", "Hamza", "Zain", "Ayaan", "Arjun", "Rohan",
    "Aarav", "Dev", "Kai", "Caleb", "Nathan", "Callum", "Connor", "Liam", "Kieran", "Owen", "Rhys",
    "Dafydd", "Gethin", "Iwan", "Seán", "Oisín", "Cian", "Ciarán", "José", "Mateo", "Andrés", "Noé",
    "Jakub", "Szymon", "Kacper", "Tomasz", "Chidi", "Kwame", "Kofi", "Tunde", "Emeka", "Felix",
    "Jasper", "Rufus", "Otis", "Stanley", "Sonny", "Bobby", "Jesse", "Levi", "Zachary", "Aaron", "Ryan",
    "Kyle", "Jamie", "Alex",
]
ADULT_FEMALE = [
    "Sarah", "Emma", "Claire", "Rachel", "Laura", "Helen", "Nicola", "Michelle", "Lisa", "Joanne",
    "Karen", "Rebecca", "Victoria", "Gemma", "Kelly", "Natalie", "Amanda", "Louise", "Catherine",
    "Jennifer", "Samantha", "Stephanie", "Kirsty", "Donna", "Angela", "Farah", "Nadia", "Shabana",
    "Rukhsana", "Sunita", "Priti", "Agnieszka", "Ewa", "Ngozi", "Abena", "Siobhán", "Mairéad", "Bronwen",
    "Ioana", "Elena", "Maria", "Lucía", "Hélène", "Deborah", "Julie", "Tracey", "Alison",
]
ADULT_MALE = [
    "Mark", "David", "Paul", "Andrew", "Richard", "Christopher", "Michael", "Stephen", "Matthew", "Simon",
    "Darren", "Lee", "Gareth", "Craig", "Neil", "Stuart", "Jonathan", "Martin", "Peter", "Robert", "Ian",
    "Anthony", "Kevin", "Gary", "Wayne", "Imran", "Tariq", "Asif", "Sanjay", "Rajesh", "Marek",
    "Chinedu", "Yaw", "Eoin", "Seamus", "Huw", "Dewi", "Carlos", "Juan", "Jürgen",
]
SURNAMES = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Thomas", "Clarke",
    "Jackson", "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper", "Hill", "Ward", "Hughes",
    "Moore", "Clark", "King", "Harrison", "Lewis", "Baker", "Lee", "Allen", "Morris", "Khan", "Scott",
    "Watson", "Davis", "Parker", "James", "Bennett", "Young", "Phillips", "Richardson", "Mitchell",
    "Bailey", "Carter", "Cook", "Singh", "Shaw", "Bell", "Collins", "Morgan", "Kelly", "Begum",
    "Miller", "Cox", "Hussain", "Marshall", "Simpson", "Price", "Anderson", "Adams", "Wilkinson", "Ali",
    "Ahmed", "Foster", "Ellis", "Murphy", "Chapman", "Mason", "Gray", "Richards", "Webb", "Griffiths",
    "Hunt", "Palmer", "Campbell", "Holmes", "Mills", "Rogers", "Barnes", "Knight", "Matthews", "Barker",
    "Powell", "Stevens", "Kaur", "Fisher", "Butler", "Dixon", "Russell", "Harvey", "Pearson", "Graham",
    "Fletcher", "Howard", "Gibson", "Walsh", "Reynolds", "Ford", "Fox", "Rose", "Stone", "Lloyd",
    "Hunter", "Burton", "Holland", "Jenkins", "Rahman", "Chowdhury", "Miah", "Islam", "Sharma", "Gupta",
    "Shah", "Mistry", "Nguyen", "Chen", "Wang", "Li", "Zhang", "Liu", "Kim", "Park", "Okafor",
    "Adeyemi", "Mensah", "Owusu", "Osei", "Nowak", "Kowalski", "Wiśniewski", "Lewandowski", "Kamiński",
    "Novak", "Horvat", "Popescu", "Ionescu", "Silva", "Santos", "Pereira", "Ferreira", "García",
    "Martínez", "Rodríguez", "González", "Hernández", "López", "Sánchez", "Núñez", "Müller", "Schmidt",
    "Schäfer", "Köhler", "Rossi", "Russo", "Bianchi", "Romano", "Costa", "Dubois", "Lefèvre", "Moreau",
    "Fontaine", "McDonald", "McCarthy", "McLaughlin", "MacLeod", "MacKenzie", "Murray", "Quinn",
    "Byrne", "Doyle", "Ryan", "Kennedy", "Lynch", "Gallagher", "Brennan", "Fitzgerald", "Ashworth",
    "Blackwood", "Crawford", "Drummond", "Eastwood", "Fairbairn", "Galloway", "Hargreaves", "Ingram",
    "Jarvis", "Kershaw", "Lambert", "Lockwood", "Middleton", "Norris", "Oakley", "Pemberton", "Ramsden",
    "Sutcliffe", "Thornton", "Underwood", "Vaughan", "Whitehead", "Yates", "Ahmadi", "Haddad", "Nasser",
    "Farouk", "Mahmoud", "Rashid", "Siddiqui", "Qureshi", "Malik", "Iqbal", "Akhtar", "Bibi", "Nair",
    "Menon", "Pillai", "Reddy", "Rao", "Joshi", "Desai", "Mehta", "Kapoor", "Okonkwo", "Boateng",
    "Asante", "Achterberg", "Lindqvist", "Andersson", "Nielsen", "Hansen", "Jensen", "Larsen",
    "Novotný", "Dvořák", "O'Brien", "O'Connor", "O'Neill", "O'Sullivan", "O'Reilly", "D'Souza",
    "D'Angelo", "Van Dijk", "De Silva",
]
# A trust's schools: place + kind; past len(PLACES) schools, the places come again as "North", ...
PLACES = [
    "Oakfield", "Ashdown", "Birchwood", "Castlegate", "Deanfield", "Elmbridge", "Fairholme", "Greenacre",
    "Hazelmere", "Ivybridge", "Juniper", "Kingsmead", "Larkhill", "Meadowbank", "Northgate", "Orchard",
    "Parkside", "Queensway", "Riverside", "Stonebridge", "Thornbury", "Upton", "Valley", "Westwood",
    "Yewtree", "Abbeyfield", "Bramley", "Coppice", "Dovecote", "Eastbrook", "Foxhill", "Glenmore",
    "Holloway", "Kestrel", "Longridge", "Millfield", "Newlands", "Oldbury", "Pinewood", "Redhill",
]
SCHOOL_KINDS = ("Academy", "High School", "Community School", "College")
QUARTERS = ("", " North", " South", " East", " West")
# fmt: on
ADULT_FIRST = ADULT_FEMALE + ADULT_MALE
FEMALE = frozenset(PUPIL_FIRST[: PUPIL_FIRST.index("Muhammad")] + ADULT_FEMALE)  # the girls come first
SHOWCASE_NAMES = (("Zoë", "O'Brien"), ("Siân", "Jones"), ("José", "García"), ("Seán", "O'Connor"))
SIMPLE_SURNAMES = [s for s in SURNAMES if s.isalpha() and s.isascii()]
FEMALE_TITLES = ("Mrs",) * 12 + ("Ms",) * 8 + ("Miss",) * 3 + ("Dr",) * 2 + ("Mx", "Rev")
MALE_TITLES = ("Mr",) * 20 + ("Dr",) * 2 + ("Mx", "Rev")
TG_LETTERS = "ABCDEFGHJKLMNPRSTW"
BOGUS_PEOPLE = (
    ("Mickey", "Mouse", "Minnie", "Mouse", "Disney"),
    ("Test", "Test", "Test", "Test", "7XX"),
    ("asdf", "asdf", "qwerty", "qwerty", "1"),
    ("Donald", "Duck", "Huey", "Duck", "Year 7"),
    ("Homer", "Simpson", "Bart", "Simpson", "4B"),
)
PARENT_COMMENTS = (
    "Thank you.",
    "Thanks for setting this up.",
    "My son has just started in Year 7.",
    "My daughter joined this term.",
    "I would like to see my child's homework.",
    "Please use this email address for everything.",
)


def _norm(text: str) -> str:
    """How utf8mb4_unicode_ci sees a name: accents and case ignored, trailing spaces too."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().rstrip()


def _ascii(text: str) -> str:
    """A name part as it appears in an email or username: a-z, 0-9 and '-' only."""
    return "".join(c for c in _norm(text) if c.isascii() and (c.isalnum() or c == "-"))


def _epoch(dt: datetime) -> int:
    return calendar.timegm(dt.timetuple())


def _fake_hash(seed: int, username: str) -> str:
    digest = hashlib.sha256(f"{seed}:{username}".encode()).hexdigest()
    return "$2y$10$" + digest[:53]


@dataclass
class MoodleUser:
    id: int
    kind: str  # "pupil" | "staff" | "parent"
    username: str
    firstname: str
    lastname: str
    email: str
    auth: str = "manual"
    idnumber: str = ""
    department: str = ""
    description: str | None = None
    password: str = ""
    suspended: int = 0
    deleted: int = 0
    timecreated: int = 0
    timemodified: int = 0  # 0: same as timecreated
    contextid: int | None = None  # its user context, None when it has none (yet)
    cohort: bool = False  # a member of the 'pupils' cohort
    institution: str = INSTITUTION  # the pupil's or staff member's school (parents have none)


@dataclass
class Request:
    """One row of the requests table (children as (fname, sname, tg); absent ones are '')."""

    id: int
    parent_title: str
    parent_fname: str
    parent_sname: str
    parent_email: str
    children: list[tuple[str, str, str]]
    status: str
    request_type: str
    parent_comment: str
    staff_comment: str
    system_comment: str
    date_created: datetime
    date_updated: datetime | None
    date_approved: datetime | None
    remote_ip_addr: str
    provisioned_username: str | None = None
    provisioned_initialpass: str | None = None

    def row(self) -> tuple:
        kids = list(self.children) + [("", "", "")] * (3 - len(self.children))
        return (
            self.id, self.parent_title, self.parent_fname, self.parent_sname,
            kids[0][0], kids[0][1], kids[0][2], self.parent_email,
            kids[1][0], kids[1][1], kids[1][2], kids[2][0], kids[2][1], kids[2][2],
            self.status, self.parent_comment, self.staff_comment, self.system_comment,
            self.date_created, self.date_updated, self.date_approved, self.remote_ip_addr,
            self.provisioned_username, self.provisioned_initialpass, self.request_type,
        )  # fmt: skip


REQUEST_COLS = (
    "id", "parent_title", "parent_fname", "parent_sname", "child_fname", "child_sname", "child_tg",
    "parent_email", "child2_fname", "child2_sname", "child2_tg", "child3_fname", "child3_sname",
    "child3_tg", "status", "parent_comment", "staff_comment", "system_comment", "date_created",
    "date_updated", "date_approved", "remote_ip_addr", "provisioned_username",
    "provisioned_initialpass", "request_type",
)  # fmt: skip


@dataclass
class AuthRow:
    """One row of the auth table, exactly as WordPress approval writes it."""

    username: str
    parent_title: str
    parent_fname: str
    parent_sname: str
    parent_email: str
    description: str
    request_id: int


@dataclass
class School:
    size: int
    seed: int
    tutor_groups: list[str]
    pupils: list[MoodleUser]
    staff: list[MoodleUser]
    parents: list[MoodleUser]  # existing parents (auth 'db'), provisioned before
    links: list[tuple[int, int]]  # (parent user id, child user id): existing 'parent' role assignments
    requests: list[Request]  # in id order
    auth_rows: list[AuthRow]  # in insertion order (auth ids 1.. on an empty table)
    # request id -> {"status", "request_type", "username", "children", "cases", "intended",
    #   "auth_row", "existing_parent_id", "new_account", "messy_email"}: see the module docstring.
    expectations: dict[int, dict]
    # user ids of the special cases: "ambiguous_pairs", "twins", "namesakes_other_group"
    # (pairs of pupil ids), "staff_namesakes" ((pupil, staff)), "parent_namesakes"
    # ((pupil, parent)), "staff_only", "suspended", "deleted", "without_context" (ids).
    special: dict[str, list]
    cohort_time: int = 0
    link_time: dict[int, int] = field(default_factory=dict)  # parent id -> role assignment time
    schools: list[str] = field(default_factory=lambda: [INSTITUTION])  # one, or a trust's (see generate)

    @property
    def users(self) -> list[MoodleUser]:
        """All users in id order (staff, then pupils, then parents)."""
        return self.staff + self.pupils + self.parents

    def user(self, user_id: int) -> MoodleUser:
        for u in self.users:
            if u.id == user_id:
                return u
        raise KeyError(user_id)

    def request(self, request_id: int) -> Request:
        return self.requests[request_id - self.requests[0].id]


def _count(size: int, fraction: float, minimum: int) -> int:
    return max(minimum, round(size * fraction))


class _Builder:
    """Builds a School. Sets are only used for membership, never iterated (hash order varies)."""

    def __init__(
        self,
        size: int,
        seed: int,
        approved: int | None = None,
        taken: tuple[set[str], set[str]] | None = None,
        first_admission: int = 100000,
        pupil_domain: str = PUPIL_DOMAIN,
    ):
        """taken: (emails, usernames) already used elsewhere in a trust (shared, and added to);
        first_admission, pupil_domain: the school's admission numbers and pupils' email domain."""
        self.rng = random.Random(seed)
        self.size, self.seed, self.approved = size, seed, approved
        self.first_admission, self.pupil_domain = first_admission, pupil_domain
        self.used_names: set[tuple[str, str]] = set()  # (first, last) of pupils and staff, normalised
        self.used_emails, self.used_usernames = taken or (set(), set())

    # --- names --------------------------------------------------------------------------------
    def surname(self) -> str:
        if self.rng.random() < 0.04:
            a, b = self.rng.sample(SIMPLE_SURNAMES, 2)
            return f"{a}-{b}"
        return self.rng.choice(SURNAMES)

    def fresh_name(self, firsts=PUPIL_FIRST, last: str | None = None, claim: bool = True) -> tuple[str, str]:
        """A first name + surname no pupil or staff member has (claimed unless claim=False)."""
        for _ in range(10000):
            first = self.rng.choice(firsts)
            surname = last or self.surname()
            key = (_norm(first), _norm(surname))
            if key not in self.used_names:
                if claim:
                    self.used_names.add(key)
                return first, surname
        raise RuntimeError("ran out of unused names: the name lists are too short for this size")

    def email(self, local: str, domain: str) -> str:
        candidate, n = f"{local}@{domain}", 1
        while candidate in self.used_emails:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.used_emails.add(candidate)
        return candidate

    def parent_email(self, first: str, last: str) -> str:
        f, lst = _ascii(first) or "parent", _ascii(last) or "family"
        style = self.rng.randrange(5)
        local = [f"{f}.{lst}", f"{f}{lst}", f"{f[0]}{lst}", f"{lst}.{f}", f"{f}_{lst}"][style]
        if self.rng.random() < 0.4:
            local += str(self.rng.randint(1, 99))
        return self.email(local, self.rng.choice(PARENT_DOMAINS))

    def username(self, base: str) -> str:
        candidate, n = base, 1
        while candidate in self.used_usernames:
            n += 1
            candidate = f"{base}{n}"
        self.used_usernames.add(candidate)
        return candidate

    # --- the school ---------------------------------------------------------------------------
    def tutor_groups(self, n_pupils: int) -> list[str]:
        n_groups = max(7, round(n_pupils / 27.5))
        per_year = [n_groups // 7 + (1 if i < n_groups % 7 else 0) for i in range(7)]
        if max(per_year) > len(TG_LETTERS) * (len(TG_LETTERS) - 1):
            raise ValueError("size too large: not enough tutor group names")
        groups = []
        for year, count in zip(range(7, 14), per_year, strict=True):
            initials: list[str] = []
            while len(initials) < count:
                pair = "".join(self.rng.sample(TG_LETTERS, 2))
                if pair not in initials:
                    initials.append(pair)
            groups += [f"{year}{pair}" for pair in sorted(initials)]
        return groups

    def pupil(self, first: str, last: str, group: str) -> MoodleUser:
        return MoodleUser(
            id=0,
            kind="pupil",
            username="",
            firstname=first,
            lastname=last,
            email="",
            department=group,
            cohort=True,
        )

    def build(self) -> School:
        self.make()
        return _finish(self.size, self.seed, [self])

    def make(self) -> None:
        """The school's people and requests, without ids (see _finish)."""
        rng, size = self.rng, self.size
        n_pupils = max(60, round(2.5 * size))
        n_staff = max(10, round(size / 10))
        n_special = max(2, round(n_pupils / 150))
        groups = self.tutor_groups(n_pupils)
        self.groups = groups

        # Pupils: the special structures first, then everyone else, filling groups to ~27.
        special: dict[str, list] = {k: [] for k in (
            "ambiguous_pairs", "twins", "namesakes_other_group", "staff_namesakes", "parent_namesakes",
            "staff_only", "suspended", "deleted", "without_context")}  # fmt: skip
        pupils: list[MoodleUser] = []
        showcase = []  # names every school of any size has, for tests and demos
        for first, last in SHOWCASE_NAMES:
            self.used_names.add((_norm(first), _norm(last)))
            showcase.append(self.pupil(first, last, rng.choice(groups)))
        pupils += showcase
        for _ in range(n_special):
            first, last = self.fresh_name()
            group = rng.choice(groups)
            pair = (self.pupil(first, last, group), self.pupil(first, last, group))
            special["ambiguous_pairs"].append(pair)
            first, last = self.fresh_name()
            g1, g2 = rng.sample(groups, 2)
            pair = (self.pupil(first, last, g1), self.pupil(first, last, g2))
            special["namesakes_other_group"].append(pair)
            last = self.surname()
            first1, _ = self.fresh_name(last=last)
            first2, _ = self.fresh_name(last=last)
            group = rng.choice(groups)
            pair = (self.pupil(first1, last, group), self.pupil(first2, last, group))
            special["twins"].append(pair)
            for kind in ("suspended", "deleted"):
                first, last = self.fresh_name()
                p = self.pupil(first, last, rng.choice(groups))
                if kind == "suspended":
                    p.suspended = 1
                else:
                    p.deleted, p.cohort = 1, False
                special[kind].append(p)
            for k in ("ambiguous_pairs", "namesakes_other_group", "twins"):
                pupils += special[k][-1]
            pupils += [special["suspended"][-1], special["deleted"][-1]]
        fill = Counter(p.department for p in pupils)
        target = n_pupils / len(groups)
        slots: list[str] = []
        for i, g in enumerate(groups):
            slots += [g] * max(0, round(target * (i + 1)) - round(target * i) - fill[g])
        remaining = n_pupils - len(pupils)
        while len(slots) < remaining:
            slots.append(rng.choice(groups))
        rng.shuffle(slots)
        regular = [self.pupil(*self.fresh_name(), g) for g in slots[:remaining]]
        pupils += regular
        regular = showcase + regular

        # Admission numbers, usernames and emails, oldest year first (as an MIS export lists them).
        pupils.sort(key=lambda p: (-int(p.department[:-2]), p.department, _norm(p.lastname), _norm(p.firstname)))
        first = self.first_admission
        admissions = sorted(rng.sample(range(first, first + 4 * len(pupils)), len(pupils)))
        local_counts: Counter[str] = Counter()
        for p, adm in zip(pupils, admissions, strict=True):
            year = int(p.department[:-2])
            joined = datetime(2026 - (year - 7), 8, 20) + timedelta(seconds=rng.randrange(10 * 86400))
            local = f"{_ascii(p.firstname)}.{_ascii(p.lastname)}"
            local_counts[local] += 1
            p.username, p.idnumber = f"p{adm}", str(adm)
            p.email = f"{local}{local_counts[local]}@{self.pupil_domain}"
            p.timecreated = _epoch(joined)
            p.password = _fake_hash(self.seed, p.username)
            if p.deleted:  # what Moodle's delete_user() leaves behind
                deleted_at = _epoch(datetime(2026, 9, 7, 9, 0) + timedelta(seconds=rng.randrange(5 * 86400)))
                p.username, p.timemodified = f"{p.email}.{deleted_at}", deleted_at
                p.email = hashlib.md5(f"p{adm}".encode(), usedforsecurity=False).hexdigest()
                p.idnumber = ""
        self.used_usernames.update(p.username for p in pupils)

        # Staff: some share a name with a regular pupil, the others have names nobody else has.
        n_staff_namesakes = max(2, n_staff // 6)
        staff: list[MoodleUser] = []
        namesake_pupils = rng.sample(regular, n_staff_namesakes)
        for i in range(n_staff):
            if i < n_staff_namesakes:
                first, last = namesake_pupils[i].firstname, namesake_pupils[i].lastname
            else:
                first, last = self.fresh_name(ADULT_FIRST)
            s = MoodleUser(
                id=0,
                kind="staff",
                username=self.username(f"{_ascii(first)[0]}{_ascii(last)}"),
                firstname=first,
                lastname=last,
                email=self.email(f"{_ascii(first)}.{_ascii(last)}", STAFF_DOMAIN),
                idnumber=f"T{1000 + i}",
                department="Staff",
                timecreated=_epoch(datetime(2015 + rng.randrange(11), 8, 28, 9, 0)),
            )
            s.password = _fake_hash(self.seed, s.username)
            staff.append(s)
            if i < n_staff_namesakes:
                special["staff_namesakes"].append((namesake_pupils[i], s))
            else:
                special["staff_only"].append(s)
        self.pupils, self.staff, self.regular, self.special = pupils, staff, regular, special
        taken = {id(p) for p in namesake_pupils}
        self.plain = [p for p in regular if id(p) not in taken]  # unique names, no namesake of any kind
        by_surname: dict[str, list[MoodleUser]] = {}
        for p in self.plain:
            by_surname.setdefault(p.lastname, []).append(p)
        self.by_surname = by_surname

        self.existing_parents()
        self.contexts()
        self.build_requests()

    def rename_groups(self, school: str, code: str) -> None:
        """A trust's school: its tutor groups named with its code (7AB: OAK-7AB) in Moodle and in its
        requests, and its pupils' and staff's institution."""
        new = {g: f"{code}-{g}" for g in self.groups}
        self.groups = [new[g] for g in self.groups]
        for u in self.pupils + self.staff:
            u.institution = school
            u.department = new.get(u.department, u.department)
        for r in self.reqs:
            r["children"] = [(f, sn, new.get(tg, tg)) for f, sn, tg in r["children"]]
            for old, renamed in new.items():
                if f"({old})" in r["parent_comment"]:
                    r["parent_comment"] = r["parent_comment"].replace(f"({old})", f"({renamed})")

    def family(self, k: int, first: MoodleUser | None = None, exclude=()) -> list[MoodleUser]:
        """k plain pupils, siblings sharing the first one's surname when there are any."""
        skip = {id(p) for p in exclude}
        while first is None or id(first) in skip:
            first = self.rng.choice(self.plain)
        kids = [first]
        skip.add(id(first))
        same = [p for p in self.by_surname.get(first.lastname, []) if id(p) not in skip]
        while len(kids) < k:
            pool = same if same and self.rng.random() < 0.7 else self.plain
            kid = self.rng.choice(pool)
            if id(kid) in skip:
                if pool is same:
                    same = [p for p in same if id(p) not in skip]
                continue
            kids.append(kid)
            skip.add(id(kid))
        return kids

    def n_children(self) -> int:
        r = self.rng.random()
        return 1 if r < 0.6 else 2 if r < 0.9 else 3

    def title(self, first: str) -> str:
        return self.rng.choice(FEMALE_TITLES if first in FEMALE else MALE_TITLES)

    def existing_parents(self) -> None:
        rng = self.rng
        n_parents = _count(self.size, 0.20, 5)
        n_namesakes = max(2, n_parents // 10)
        self.parents: list[MoodleUser] = []
        self.links: list[tuple[MoodleUser, MoodleUser]] = []
        self.children_of: dict[int, list[MoodleUser]] = {}
        self.parent_info: dict[int, tuple[str, str]] = {}  # id(parent) -> (title, first name)
        linked_once: set[int] = set()
        for i in range(n_parents):
            kids = self.family(self.n_children())
            if i < n_namesakes:  # father and son (or mother and daughter) with the same name
                first, last = kids[0].firstname, kids[0].lastname
                title = self.title(first)
            else:
                first = rng.choice(ADULT_FIRST)
                last = kids[0].lastname if rng.random() < 0.8 else self.surname()
                title = self.title(first)
            email = self.parent_email(first, last)
            parent = MoodleUser(
                id=0,
                kind="parent",
                username=email,
                firstname=f"{title} {first}",
                lastname=last,
                email=email,
                auth="db",
                description=AUTH_DESCRIPTION,
            )
            parent.password = _fake_hash(self.seed, email)
            self.parent_info[id(parent)] = (title, first)
            self.parents.append(parent)
            self.children_of[id(parent)] = kids
            for kid in kids:
                self.links.append((parent, kid))
                linked_once.add(id(kid))
            if i < n_namesakes:
                self.special["parent_namesakes"].append((kids[0], parent))
        self.linked_ids = linked_once
        # The parents' namesakes are only named as such, never as ordinary ("ok") children.
        namesakes = {id(kid) for kid, _ in self.special["parent_namesakes"]}
        self.plain = [p for p in self.plain if id(p) not in namesakes]
        self.by_surname = {k: [p for p in v if id(p) not in namesakes] for k, v in self.by_surname.items()}

    def contexts(self) -> None:
        """About 10% of pupils (none linked to a parent, none deleted) have no user context yet."""
        eligible = [p for p in self.pupils if not p.deleted and id(p) not in self.linked_ids]
        without = self.rng.sample(eligible, min(len(eligible), round(0.10 * len(self.pupils))))
        self.no_context = {id(p) for p in without}
        for p in self.pupils:
            p.contextid = None if (p.deleted or id(p) in self.no_context) else -1
        for u in self.staff + self.parents:
            u.contextid = -1

    # --- requests -----------------------------------------------------------------------------
    def when(self, lo: datetime, hi: datetime) -> datetime:
        """A moment between lo and hi, in waking hours (parents fill the form from 07:00 to 23:00)."""
        day = lo.replace(hour=0, minute=0, second=0) + timedelta(days=self.rng.randrange((hi - lo).days + 1))
        t = day + timedelta(seconds=self.rng.randrange(7 * 3600, 23 * 3600))
        return min(max(t, lo), hi)

    def later(self, after: datetime, max_days: float = 4, office: bool = True) -> datetime:
        """Staff act some time after `after`, in office hours (08:00 to 17:30) unless office=False."""
        t = after + timedelta(seconds=self.rng.randrange(1800, int(max_days * 86400)))
        if office and not (8 <= t.hour < 17 or (t.hour == 17 and t.minute < 30)):
            t = t.replace(hour=8, minute=0, second=0) + timedelta(seconds=self.rng.randrange(3 * 3600))
            if t <= after:
                t += timedelta(days=1)
        return min(t, max(END, after + timedelta(minutes=5)))

    def ip(self) -> str:
        net = self.rng.choice(("203.0.113", "198.51.100", "192.0.2"))
        return f"{net}.{self.rng.randint(1, 254)}"

    def new_request(
        self,
        status: str,
        rtype: str,
        kids: list,
        cases: list[str],
        intended: list,
        parent: MoodleUser | None = None,
        auth: bool | None = None,
        lo=START,
        hi=None,
    ) -> dict:
        """A request as a dict of columns plus bookkeeping; kids are (fname, sname, tg)."""
        rng = self.rng
        if parent is not None:
            (title, first), last, email = self.parent_info[id(parent)], parent.lastname, parent.email
        else:
            first = rng.choice(ADULT_FIRST)
            title = self.title(first)
            last = kids[0][1] if rng.random() < 0.7 and kids[0][1] else self.surname()
            email = self.parent_email(first, last)
        created = self.when(lo, hi or END - timedelta(days=5))
        r = {
            "parent_title": title, "parent_fname": first, "parent_sname": last, "parent_email": email,
            "children": kids, "status": status, "request_type": rtype, "cases": cases, "intended": intended,
            "parent": parent, "date_created": created, "auth": auth, "messy": False,
            "parent_comment": rng.choice(PARENT_COMMENTS) if rng.random() < 0.3 else "",
            "staff_comment": "", "ip": self.ip(), "order": len(self.reqs),
        }  # fmt: skip
        self.reqs.append(r)
        return r

    def ok_kids(self, k: int, exclude=()) -> tuple[list, list[str], list]:
        kids = self.family(k, exclude=exclude)
        return [(p.firstname, p.lastname, p.department) for p in kids], ["ok"] * k, kids

    def wrong_group(self, group: str) -> str:
        same_year = [g for g in self.groups if g != group and g[:-2] == group[:-2]]
        return self.rng.choice(same_year or [g for g in self.groups if g != group])

    def special_child(self, case: str, n: int) -> tuple[list, list[str], list]:
        """The n-th request's child (or children, for twins) for one special case."""
        sp, rng = self.special, self.rng
        if case == "twins":
            a, b = sp["twins"][n % len(sp["twins"])]
            return [(p.firstname, p.lastname, p.department) for p in (a, b)], ["twin", "twin"], [a, b]
        if case == "ambiguous_pair":
            a, _ = sp["ambiguous_pairs"][n % len(sp["ambiguous_pairs"])]
            return [(a.firstname, a.lastname, a.department)], [case], [None]
        if case == "namesake_other_group":
            pairs = sp["namesakes_other_group"]
            p = pairs[n % len(pairs)][(n // len(pairs)) % 2]
        elif case == "staff_namesake":
            p = sp["staff_namesakes"][n % len(sp["staff_namesakes"])][0]
        elif case == "parent_namesake":
            p = sp["parent_namesakes"][n % len(sp["parent_namesakes"])][0]
        elif case == "suspended_pupil":
            p = sp["suspended"][n % len(sp["suspended"])]
        elif case == "deleted_pupil":
            p = sp["deleted"][n % len(sp["deleted"])]
        elif case == "staff_only":
            s = sp["staff_only"][n % len(sp["staff_only"])]
            return [(s.firstname, s.lastname, rng.choice(self.groups))], [case], [s]
        elif case == "wrong_tg":
            p = rng.choice(self.plain)
            return [(p.firstname, p.lastname, self.wrong_group(p.department))], [case], [p]
        elif case == "no_such_pupil":
            first, last = self.fresh_name()
            return [(first, last, rng.choice(self.groups))], [case], [None]
        else:
            raise ValueError(case)
        return [(p.firstname, p.lastname, p.department)], [case], [p]

    def build_requests(self) -> None:
        rng, size = self.rng, self.size
        self.reqs: list[dict] = []
        n_prov = len(self.parents)
        n_pending = _count(size, 0.15, 1)
        n_small = {s: _count(size, 0.05, 1) for s in ("rejected", "duplicate", "bogus", "unknown")}
        n_approved = size - n_prov - n_pending - sum(n_small.values()) if self.approved is None else self.approved
        n_missing = _count(size, 0.03, 1)
        n_incomplete = _count(size, 0.01, 1)
        n_case = _count(size, 0.015, 1)
        special_cases = [
            "no_such_pupil", "wrong_tg", "ambiguous_pair", "staff_only", "suspended_pupil", "deleted_pupil",
            "twins", "namesake_other_group", "staff_namesake", "parent_namesake",
        ]  # fmt: skip
        n_plain = n_approved - n_missing - n_incomplete - n_case * len(special_cases)
        if n_plain < 2:
            raise ValueError(f"size must be at least {MIN_SIZE}")

        # Provisioned: each existing parent's original request, in September.
        sept_end = datetime(2026, 9, 30, 18, 0)
        for parent in self.parents:
            kids = self.children_of[id(parent)]
            rtype = rng.choices((NEW_ACCOUNT, CANNOT_LOG_IN, UPLOADED), (85, 5, 10))[0]
            self.new_request(
                "provisioned",
                rtype,
                [(p.firstname, p.lastname, p.department) for p in kids],
                ["ok"] * len(kids),
                kids,
                parent=parent,
                auth=True,
                hi=sept_end - timedelta(days=4),
            )

        # Approved: missing children from existing parents, incomplete approvals, special cases, plain.
        for parent in rng.sample(self.parents, min(n_missing, len(self.parents))):
            linked = self.children_of[id(parent)]
            new_kid = self.family(1, exclude=linked)[0]
            kids, cases, intended = [new_kid], ["ok"], [new_kid]
            if rng.random() < 0.5:
                kids, cases, intended = [new_kid, linked[0]], ["ok", "already_linked"], [new_kid, linked[0]]
            r = self.new_request(
                "approved",
                CHILDREN_NOT_LINKED,
                [(p.firstname, p.lastname, p.department) for p in kids],
                cases,
                intended,
                parent=parent,
                auth=False,
                lo=datetime(2026, 10, 1, 8, 0),
            )
            r["parent_comment"] = f"Please also link {new_kid.firstname} ({new_kid.department}) to my account."
        for _ in range(n_incomplete):
            self.new_request("approved", NEW_ACCOUNT, *self.ok_kids(self.n_children()), auth=False)
        plain_types = [CANNOT_LOG_IN, UPLOADED] + rng.choices(
            (NEW_ACCOUNT, CANNOT_LOG_IN, UPLOADED), (80, 10, 10), k=n_plain - 2
        )
        for case in special_cases:
            for n in range(n_case):
                kids, cases, intended = self.special_child(case, n)
                k = max(len(kids), self.n_children())
                others, ocases, ointended = self.ok_kids(k - len(kids)) if k > len(kids) else ([], [], [])
                pos = rng.randrange(len(others) + 1)
                rtype = rng.choices((NEW_ACCOUNT, CANNOT_LOG_IN), (9, 1))[0]
                self.new_request(
                    "approved",
                    rtype,
                    others[:pos] + kids + others[pos:],
                    ocases[:pos] + cases + ocases[pos:],
                    ointended[:pos] + intended + ointended[pos:],
                    auth=True,
                )
        for rtype in plain_types:
            self.new_request("approved", rtype, *self.ok_kids(self.n_children()), auth=True)

        # The rest.
        for _ in range(n_pending):
            rtype = rng.choices((NEW_ACCOUNT, CANNOT_LOG_IN), (9, 1))[0]
            self.new_request(
                "pending",
                rtype,
                *self.ok_kids(self.n_children()),
                auth=False,
                lo=datetime(2026, 11, 1, 8, 0),
                hi=END - timedelta(hours=2),
            )
        for status in ("rejected", "unknown"):
            for _ in range(n_small[status]):
                rtype = rng.choices((NEW_ACCOUNT, CANNOT_LOG_IN), (9, 1))[0]
                r = self.new_request(status, rtype, *self.ok_kids(self.n_children()), auth=False)
                r["staff_comment"] = rng.choice(
                    ("Not a parent of a pupil here.", "Could not verify this parent.")
                    if status == "rejected"
                    else ("Asked the office to check.", "Waiting for a reply.", "")
                )
        for i in range(n_small["bogus"]):
            pf, ps, cf, cs, tg = BOGUS_PEOPLE[i % len(BOGUS_PEOPLE)]
            r = self.new_request("bogus", NEW_ACCOUNT, [(cf, cs, tg)], ["bogus"], [None], auth=False)
            r.update(
                parent_fname=pf,
                parent_sname=ps,
                parent_title=self.title(pf),
                parent_email=self.email(f"{_ascii(pf) or 'x'}{rng.randint(100, 999)}", "example.com"),
                parent_comment=rng.choice(("test", "lol", "", "asdfgh")),
                staff_comment="Spam.",
            )
        originals = [r for r in self.reqs if r["auth"]]
        for orig in rng.sample(originals, min(n_small["duplicate"], len(originals))):
            r = self.new_request(
                "duplicate",
                NEW_ACCOUNT,
                list(orig["children"]),
                list(orig["cases"]),
                list(orig["intended"]),
                auth=False,
            )
            r.update({k: orig[k] for k in ("parent_title", "parent_fname", "parent_sname", "parent_email", "parent")})
            r["duplicate_of"] = orig

        # Approval, messy emails, comments and the auth rows.
        approvable = [r for r in self.reqs if r["status"] == "approved" and r["parent"] is None]
        n_messy = _count(size, 0.02, 2)
        messy = rng.sample(approvable, min(n_messy - 1, len(approvable)))
        messy += [r for r in self.reqs if r["request_type"] == CHILDREN_NOT_LINKED][:1]
        for r in messy:
            r["messy"] = True
            e = r["parent_email"]
            style = rng.randrange(3)
            local, _, domain = e.partition("@")
            mixed = ".".join(w.capitalize() for w in local.split(".")) + "@" + domain.capitalize()
            r["parent_email"] = [mixed, f" {e} ", f"{mixed} "][style]
        self.timeline()

    def timeline(self) -> None:
        """Dates and system comments, from each request's status."""
        rng = self.rng
        for r in self.reqs:
            created, status = r["date_created"], r["status"]
            if "duplicate_of" in r:
                created = r["date_created"] = self.later(r["duplicate_of"]["date_approved"], 10)
            events: list[tuple[datetime, str]] = []
            approved = updated = None
            if r["request_type"] == UPLOADED:
                events.append((created, f"{UPLOADED}."))
                approved = created
                events.append((approved, "Approved by staff."))
            else:
                events.append((created, "Request received."))
                if status in ("approved", "provisioned"):
                    approved = self.later(created)
                    events.append((approved, "Approved by staff."))
            if status == "provisioned":
                done = self.later(approved, 0.2, office=False)
                events.append((done, f"Moodle account created: {r['parent_email'].strip().lower()}."))
                events.append((done, f"Children linked: {len(r['children'])}."))
            elif status in ("rejected", "bogus", "unknown", "duplicate"):
                text = {
                    "rejected": "Rejected by staff.",
                    "bogus": "Marked as bogus by staff.",
                    "unknown": "Status set to unknown by staff.",
                    "duplicate": "Duplicate: an account already exists for this email address.",
                }[status]
                events.append((self.later(created, 3), text))
            if len(events) > 1:
                updated = events[-1][0]
            if status == "approved" and rng.random() < 0.05:
                r["staff_comment"] = "Checked against the MIS."
            r["date_approved"], r["date_updated"] = approved, updated
            r["system_comment"] = "\n".join(f"{t:%Y-%m-%d %H:%M:%S} {text}" for t, text in events)
            if status == "provisioned":
                r["parent"].timecreated = _epoch(events[-1][0])


# --- ids and expectations -------------------------------------------------------------------------
def _finish(size: int, seed: int, parts: list[_Builder], schools: list[str] | None = None) -> School:
    """Ids for the people and requests one school (or each school of a trust, in order) made: users
    staff first, then pupils, then parents; requests by the time they were made."""
    staff = [u for b in parts for u in b.staff]
    pupils = [u for b in parts for u in b.pupils]
    parents = [u for b in parts for u in b.parents]
    users = staff + pupils + parents
    uid, ctx = FIRST_USER_ID, FIRST_CONTEXT_ID
    for u in users:
        u.id, uid = uid, uid + 1
        if u.contextid is not None:
            u.contextid, ctx = ctx, ctx + 1
    reqs = sorted(
        ((i, r) for i, b in enumerate(parts) for r in b.reqs),
        key=lambda ir: (ir[1]["date_created"], ir[0], ir[1]["order"]),
    )
    requests, auth_rows, expectations = [], [], {}
    approvals = []
    for rid, (_, r) in enumerate(reqs, start=FIRST_REQUEST_ID):
        username = r["parent_email"].strip().lower()
        req = Request(
            id=rid,
            parent_title=r["parent_title"],
            parent_fname=r["parent_fname"],
            parent_sname=r["parent_sname"],
            parent_email=r["parent_email"],
            children=r["children"],
            status=r["status"],
            request_type=r["request_type"],
            parent_comment=r["parent_comment"],
            staff_comment=r["staff_comment"],
            system_comment=r["system_comment"],
            date_created=r["date_created"],
            date_updated=r["date_updated"],
            date_approved=r["date_approved"],
            remote_ip_addr=r["ip"],
            provisioned_username=username if r["status"] == "provisioned" else None,
        )
        if r["request_type"] == UPLOADED:
            req.remote_ip_addr = "192.0.2.10"
        requests.append(req)
        if r["auth"]:
            approvals.append(
                (
                    r["date_approved"],
                    rid,
                    AuthRow(
                        username=username,
                        parent_title=r["parent_title"],
                        parent_fname=f"{r['parent_title']} {r['parent_fname']}",
                        parent_sname=r["parent_sname"],
                        parent_email=username,
                        description=AUTH_DESCRIPTION,
                        request_id=rid,
                    ),
                )
            )
        parent = r["parent"]
        expectations[rid] = {
            "status": r["status"],
            "request_type": r["request_type"],
            "username": username,
            "children": [],
            "cases": list(r["cases"]),
            "intended": [None if p is None else p.id for p in r["intended"]],
            "auth_row": bool(r["auth"]),
            "existing_parent_id": parent.id if parent is not None else None,
            "new_account": bool(r["auth"]) and r["status"] == "approved" and parent is None,
            "messy_email": r["messy"],
        }
    approvals.sort(key=lambda a: (a[0], a[1]))
    auth_rows = [a[2] for a in approvals]
    special = {
        k: [tuple(u.id for u in v) if isinstance(v, tuple) else v.id for b in parts for v in b.special[k]]
        for k in parts[0].special
    }
    no_context = {i for b in parts for i in b.no_context}
    special["without_context"] = [p.id for p in pupils if id(p) in no_context]
    school = School(
        size=size,
        seed=seed,
        tutor_groups=[g for b in parts for g in b.groups],
        pupils=pupils,
        staff=staff,
        parents=parents,
        links=[(a.id, c.id) for b in parts for a, c in b.links],
        requests=requests,
        auth_rows=auth_rows,
        expectations=expectations,
        special=special,
        cohort_time=_epoch(datetime(2019, 8, 30, 10, 0)),
        link_time={p.id: p.timecreated + 120 for p in parents},
        schools=schools or [INSTITUTION],
    )
    _check(school)
    return school


def match_children(school: School) -> dict[int, list[tuple]]:
    """The reference matching rule (module docstring) applied to every request's children."""
    index: dict[tuple[str, str, str], list[int]] = {}
    others: dict[tuple[str, str, str], set[int]] = {}
    for p in school.users:
        key = (_norm(p.firstname), _norm(p.lastname), _norm(p.department))
        if p.cohort and not p.deleted and not p.suspended:
            index.setdefault(key, []).append(p.id)
        elif not p.deleted:
            others.setdefault(key, set()).add(p.id)
    result = {}
    for r in school.requests:
        own = school.expectations[r.id].get("existing_parent_id") if r.id in school.expectations else None
        outcomes = []
        for fname, sname, tg in r.children:
            key = (_norm(fname), _norm(sname), _norm(tg))
            ids = index.get(key, [])
            if len(ids) == 1:
                outcomes.append((NAMESAKE,) if others.get(key, set()) - {own} else (LINKED, ids[0]))
            else:
                outcomes.append((AMBIGUOUS,) if ids else (UNMATCHED,))
        result[r.id] = outcomes
    return result


def _check(school: School) -> None:
    """Fill each expectation's children by the rule, and check they are what each case intends."""
    for rid, outcomes in match_children(school).items():
        exp = school.expectations[rid]
        exp["children"] = outcomes
        for outcome, case, intended in zip(outcomes, exp["cases"], exp["intended"], strict=True):
            if case in CASES_LINKED:
                wanted = (LINKED, intended)
            elif case == "ambiguous_pair":
                wanted = (AMBIGUOUS,)
            else:
                wanted = (UNMATCHED,)
            if outcome != wanted:
                raise RuntimeError(f"demo data inconsistent: request {rid} {case}: {outcome} != {wanted}")


def generate(size: int = 200, seed: int = 7, approved: int | None = None) -> School:
    """A school whose WordPress table holds `size` requests. Deterministic in (size, seed).
    Past SCHOOL_MAX requests, a multi-academy trust of schools sharing one Moodle (see _trust).

    approved: how many requests wait approved instead of the usual share (45 % of `size`), for a
    September queue: the school (pupils, staff, existing parents) and the other statuses still
    scale with `size`, so the table then holds more than `size` requests."""
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE}")
    if size > TRUST_MAX:
        raise ValueError(f"size must be at most {TRUST_MAX:,}")
    if size <= SCHOOL_MAX:
        return _Builder(size, seed, approved).build()
    return _trust(size, seed, approved)


def school_names(n: int) -> list[tuple[str, str]]:
    """(name, code) of a trust's n schools: "Oakfield Academy" (OAK), ..., "Oakfield North College" (OAKN)."""
    names = []
    for i in range(n):
        place, quarter = PLACES[i % len(PLACES)], QUARTERS[i // len(PLACES)]
        kind = SCHOOL_KINDS[(i + i // len(PLACES)) % len(SCHOOL_KINDS)]
        names.append((f"{place}{quarter} {kind}", place[:3].upper() + quarter[1:2]))
    return names


def _shares(total: int, weights: list[float]) -> list[int]:
    """total split in proportion to weights, in whole numbers that add up to total."""
    bounds = [round(total * sum(weights[: i + 1]) / sum(weights)) for i in range(len(weights))]
    return [b - a for a, b in zip([0, *bounds], bounds, strict=False)]


def _trust(size: int, seed: int, approved: int | None) -> School:
    """A multi-academy trust: schools of about TRUST_SCHOOL requests each (from 60 % to 140 % of it),
    each made as one school is, with its own seed, admission numbers and pupils' email domain; parents'
    emails and staff usernames unique across the trust. Its tutor groups carry the school's code
    ("OAK-7AB"), as a shared Moodle's MIS export names them, so two schools' 7AB are not one group.
    Pupils with the same name are common across schools (each draws its names on its own); a few
    per cent of each school's plain requests also name a sibling at another school ("other_school")."""
    rng = random.Random(seed)
    n = -(-size // TRUST_SCHOOL)
    names = school_names(n)
    if len({code for _, code in names}) != n:
        raise RuntimeError("two of the trust's schools have the same code")
    weights = [rng.uniform(0.6, 1.4) for _ in range(n)]
    sizes = _shares(size, weights)
    approveds = _shares(approved, weights) if approved is not None else [None] * n
    taken: tuple[set[str], set[str]] = (set(), set())
    parts = []
    for i, ((name, code), part_size, part_approved) in enumerate(zip(names, sizes, approveds, strict=True)):
        b = _Builder(
            max(part_size, MIN_SIZE),
            seed * 1000 + i,
            part_approved,
            taken=taken,
            first_admission=100000 * (i + 1),
            pupil_domain=f"{code.lower()}.{PUPIL_DOMAIN}",
        )
        b.make()
        b.rename_groups(name, code)
        parts.append(b)
    for i, b in enumerate(parts):
        others = [o for j, o in enumerate(parts) if j != i]
        plain = [
            r for r in b.reqs
            if r["status"] == "approved" and r["auth"] and r["parent"] is None and len(r["children"]) < 3
            and set(r["cases"]) == {"ok"}
        ]  # fmt: skip
        for r in rng.sample(plain, round(TRUST_SIBLINGS * len(plain))):
            kid = rng.choice(others).family(1, exclude=r["intended"])[0]
            r["children"] = [*r["children"], (kid.firstname, kid.lastname, kid.department)]
            r["cases"] = [*r["cases"], "other_school"]
            r["intended"] = [*r["intended"], kid]
    return _finish(size, seed, parts, [name for name, _ in names])


def expected_links(school: School) -> set[tuple[str, int]]:
    """(parent username, pupil id) pairs a perfect cycle leaves: the existing links plus every
    approved request's linked children, for requests with an auth row or an existing account."""
    by_id = {p.id: p.username for p in school.parents}
    links = {(by_id[a], b) for a, b in school.links}
    for exp in school.expectations.values():
        if exp["status"] != "approved" or not (exp["auth_row"] or exp["existing_parent_id"]):
            continue
        links.update((exp["username"], c[1]) for c in exp["children"] if c[0] == LINKED)
    return links


def describe(school: School) -> dict[str, int | dict]:
    """Counts for printing (values are ints or one level of {name: int})."""
    pupils = school.pupils
    approved = [e for e in school.expectations.values() if e["status"] == "approved"]
    outcomes = Counter(c[0] for e in approved for c in e["children"])
    cases = Counter(c for e in approved for c in e["cases"])
    no_ctx = {p.id for p in pupils if p.contextid is None}
    by_status = Counter(r.status for r in school.requests)
    by_type = Counter(r.request_type for r in school.requests)
    return {
        "moodle_users": len(school.users),
        "schools": len(school.schools),
        "pupil_names_in_several_schools": sum(
            1
            for n in Counter(
                n[:2] for n in {(_norm(p.firstname), _norm(p.lastname), p.institution) for p in pupils}
            ).values()
            if n > 1
        )
        if len(school.schools) > 1
        else 0,
        "pupils": len(pupils),
        "pupils_active": sum(1 for p in pupils if not p.deleted and not p.suspended),
        "pupils_suspended": sum(p.suspended for p in pupils),
        "pupils_deleted": sum(p.deleted for p in pupils),
        "pupils_without_context": sum(1 for p in pupils if not p.deleted and p.contextid is None),
        "tutor_groups": len(school.tutor_groups),
        "cohort_members": sum(p.cohort for p in pupils),
        "staff": len(school.staff),
        "existing_parents": len(school.parents),
        "parent_links": len(school.links),
        "user_contexts": sum(1 for u in school.users if u.contextid is not None),
        "requests": len(school.requests),
        "requests_by_status": {s: by_status[s] for s in DEMO_STATUSES},
        "requests_by_type": {t: by_type[t] for t in DEMO_REQUEST_TYPES},
        "auth_rows": len(school.auth_rows),
        "approved": len(approved),
        "approved_with_auth_row": sum(e["auth_row"] for e in approved),
        "approved_without_auth_row": sum(not e["auth_row"] for e in approved),
        "approved_incomplete": sum(
            1 for e in approved if not e["auth_row"] and e["request_type"] != CHILDREN_NOT_LINKED
        ),
        "approved_missing_children": sum(1 for e in approved if e["request_type"] == CHILDREN_NOT_LINKED),
        "expected_new_accounts": sum(e["new_account"] for e in approved),
        "messy_emails": sum(e["messy_email"] for e in school.expectations.values()),
        "approved_children": {k: outcomes[k] for k in (LINKED, AMBIGUOUS, UNMATCHED)},
        "expected_ambiguous_children": outcomes[AMBIGUOUS],
        "expected_unmatched_children": outcomes[UNMATCHED],
        "approved_children_without_context": sum(
            1 for e in approved for c in e["children"] if c[0] == LINKED and c[1] in no_ctx
        ),
        "approved_cases": {c: cases[c] for c in CASES if cases[c]},
        "special_users": {k: len(v) for k, v in school.special.items()},
    }


# --- loading ------------------------------------------------------------------------------------
def _insert(cur, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
    sql = f"INSERT INTO `{table}` ({', '.join(f'`{c}`' for c in cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
    for i in range(0, len(rows), CHUNK):
        cur.executemany(sql, rows[i : i + CHUNK])


def _shift(value, by: int):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value + by
    if isinstance(value, tuple):
        return tuple(_shift(v, by) for v in value)
    if isinstance(value, list):
        return [_shift(v, by) for v in value]
    return value


def _rebase(school: School, users: int, contexts: int, requests: int) -> None:
    """Move the school's ids up by the given amounts (for databases that are not fresh)."""
    if users:
        for u in school.users:
            u.id += users
        school.links = [(a + users, b + users) for a, b in school.links]
        school.special = {k: _shift(v, users) for k, v in school.special.items()}
        school.link_time = {k + users: v for k, v in school.link_time.items()}
        for e in school.expectations.values():
            e["children"] = [(c[0], c[1] + users) if c[0] == LINKED else c for c in e["children"]]
            e["intended"] = _shift(e["intended"], users)
            e["existing_parent_id"] = _shift(e["existing_parent_id"], users)
    if contexts:
        for u in school.users:
            if u.contextid is not None:
                u.contextid += contexts
    if requests:
        for r in school.requests:
            r.id += requests
        for a in school.auth_rows:
            a.request_id += requests
        school.expectations = {k + requests: v for k, v in school.expectations.items()}


USER_COLS = (
    "id", "auth", "confirmed", "deleted", "suspended", "mnethostid", "username", "password", "idnumber",
    "firstname", "lastname", "email", "institution", "department", "description", "lang", "calendartype",
    "timezone", "timecreated", "timemodified",
)  # fmt: skip


def load(cfg: TestBedConfig, school: School) -> None:
    """Write the school into cfg's two databases (made by mariadb.create), in batches.

    Moodle is written as the Moodle app user, WordPress as the WordPress user, each in one
    transaction. If the databases already hold users, contexts or requests past the ids the
    school was generated with, the school's ids are shifted first (in place).
    """
    p = cfg.moodle_prefix
    conn = mariadb.connect(cfg, cfg.moodle_app_user, cfg.moodle_db)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM `{p}user`")
        max_user = cur.fetchone()[0]
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM `{p}context`")
        max_ctx = cur.fetchone()[0]
        cur.execute(f"SELECT id FROM `{p}role` WHERE shortname = %s", (mariadb.PARENT_ROLE_SHORTNAME,))
        role = cur.fetchone()
        if role is None:
            raise RuntimeError(f"no '{mariadb.PARENT_ROLE_SHORTNAME}' role in {cfg.moodle_db}")
        users = school.users
        first_ctx = min((u.contextid for u in users if u.contextid is not None), default=max_ctx + 1)
        _rebase(school, max(0, max_user + 1 - users[0].id), max(0, max_ctx + 1 - first_ctx), 0)

        _insert(cur, f"{p}user", USER_COLS, [
            (u.id, u.auth, 1, u.deleted, u.suspended, 1, u.username, u.password, u.idnumber, u.firstname,
             u.lastname, u.email, u.institution if u.kind != "parent" else "", u.department, u.description,
             "en", "gregorian", "99", u.timecreated, u.timemodified or u.timecreated)
            for u in users
        ])  # fmt: skip
        _insert(
            cur,
            f"{p}context",
            ("id", "contextlevel", "instanceid", "path", "depth", "locked"),
            [(u.contextid, 30, u.id, f"/1/{u.contextid}", 2, 0) for u in users if u.contextid is not None],
        )
        cur.execute(
            f"INSERT INTO `{p}cohort` (contextid, name, idnumber, description, descriptionformat, visible,"
            " component, timecreated, timemodified) VALUES (1, %s, %s, %s, 1, 1, '', %s, %s)",
            (
                COHORT["name"],
                COHORT["idnumber"],
                COHORT["description"],
                school.cohort_time,
                school.cohort_time,
            ),
        )
        cohort_id = cur.lastrowid
        _insert(
            cur,
            f"{p}cohort_members",
            ("cohortid", "userid", "timeadded"),
            [(cohort_id, u.id, u.timecreated) for u in school.pupils if u.cohort],
        )
        ctx_of = {u.id: u.contextid for u in school.pupils}
        _insert(cur, f"{p}role_assignments",
                ("roleid", "contextid", "userid", "timemodified", "modifierid", "component", "itemid",
                 "sortorder"),
                [(role[0], ctx_of[child], parent, school.link_time[parent], ADMIN_ID, "", 0, 0)
                 for parent, child in school.links])  # fmt: skip
        conn.commit()
        cur.close()
    finally:
        conn.close()

    conn = mariadb.connect(cfg, cfg.wp_user, cfg.wp_db)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM `{cfg.wp_requests_table}`")
        max_req = cur.fetchone()[0]
        _rebase(school, 0, 0, max(0, max_req + 1 - school.requests[0].id))
        _insert(cur, cfg.wp_requests_table, REQUEST_COLS, [r.row() for r in school.requests])
        _insert(cur, cfg.wp_auth_table,
                ("username", "parent_title", "parent_fname", "parent_sname", "parent_email", "description",
                 "request_id"),
                [(a.username, a.parent_title, a.parent_fname, a.parent_sname, a.parent_email, a.description,
                  a.request_id) for a in school.auth_rows])  # fmt: skip
        conn.commit()
        cur.close()
    finally:
        conn.close()
