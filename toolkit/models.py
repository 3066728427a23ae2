"""Typed, frozen models of a campaign repository (DESIGN.md §2).

Schemas are pydantic models (extra keys forbidden, every error collected). Each
loaded model carries a `Located` view of its file's SourceMap, so that any value
can be pointed at: `campaign.pos("subject")`, `segment.where.pos`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from toolkit.findings import Pos
from toolkit.yamlpos import Located

# --- purposes ---------------------------------------------------------------

TRANSACTIONAL_PURPOSES = (
    "appointment-reminder",
    "care-instructions",
    "lab-results-notice",
    "refill-reminder",
    "care-coordination",
)
PURPOSES: dict[str, tuple[str, bool]] = {
    # purpose: (HIPAA category, commercial under CAN-SPAM by default)
    **{p: ("treatment", False) for p in TRANSACTIONAL_PURPOSES},
    "health-education": ("treatment or operations", True),
    "plan-benefits": ("operations: the organization's own products and services", True),
    "fundraising": ("fundraising (164.514(f))", False),
    "marketing": ("marketing: authorization required", True),
    "general-newsletter": ("not targeted on health information", True),
}

FIELD_TYPES = (
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
    "email",
    "list[string]",
)
FIELD_CLASSES = ("identifier", "demographic", "clinical", "none")
RESERVED_KEYS = (
    "id",
    "email",
    "authorizations",
    "smime_certificate",
    "unencrypted_email_ok",
    "no_email",
)
BUILTIN_NAMES = (
    "contact",
    "sender",
    "organization",
    "campaign",
    "unsubscribe_url",
    "view_online_url",
    "now",
)


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    _loc: Located | None = PrivateAttr(default=None)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _private_defaults_at_init(cls)

    # Private attributes are read from __pydantic_private__ directly: going through
    # BaseModel.__getattr__ cost a few microseconds per read, and rules read them per campaign.
    @property
    def loc(self) -> Located:
        loc = self.__pydantic_private__["_loc"]  # type: ignore[index]
        assert loc is not None, "model was not attached to its source"
        return loc  # type: ignore[no-any-return]

    def pos(self, *path: Any) -> Pos:
        """Position of a value inside this model (or of the model itself)."""
        return self.loc.at(*path)

    def key_pos(self, *path: Any) -> Pos:
        return self.loc.key_at(*path)


# What pydantic makes every model with private attributes run after validation: a generic
# function that looks each default up and copies it, about half of validating a
# campaign.yaml (bench/lint.md). A subclass whose private defaults are all immutable
# scalars gets a function that sets the same dict directly; one that defines its own
# model_post_init keeps pydantic's.
_PYDANTIC_PRIVATE_INIT = Model.__dict__.get("model_post_init")
_SCALARS = (type(None), str, int, float, bool)


def _private_defaults_at_init(cls: type[Model]) -> None:
    if _PYDANTIC_PRIVATE_INIT is None or cls.__pydantic_post_init__ != "model_post_init":
        return  # a pydantic that initialises private attributes some other way
    current = cls.__dict__.get("model_post_init")
    inner = getattr(current, "__wrapped__", current)  # pydantic wraps an inherited one
    if inner is not _PYDANTIC_PRIVATE_INIT and not getattr(inner, "sets_private_defaults", False):
        return
    defaults: dict[str, Any] = {}
    for name, attr in cls.__private_attributes__.items():
        if attr.default_factory is not None or type(attr.default) not in _SCALARS:
            return
        defaults[name] = attr.default

    def model_post_init(self: BaseModel, context: Any, /) -> None:
        if getattr(self, "__pydantic_private__", None) is None:  # as pydantic's
            object.__setattr__(self, "__pydantic_private__", defaults.copy())

    model_post_init.sets_private_defaults = True  # type: ignore[attr-defined]
    cls.model_post_init = model_post_init  # type: ignore[method-assign]


_NESTED = (BaseModel, dict, list, tuple)


def _holds_models(value: Any) -> bool:
    """Whether attach has anything to do below value (a model, or a container with one)."""
    if isinstance(value, BaseModel):
        return True
    if isinstance(value, dict):
        return any(isinstance(v, _NESTED) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, _NESTED) for v in value)
    return False


def _may_hold_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_may_hold_models(arg) for arg in get_args(annotation))


# model class -> the fields whose type can hold a model (e.g. Campaign: authorization,
# delivery, waivers); the others hold scalars or plain data, where attach has nothing to do
_MODEL_FIELDS: dict[type, tuple[str, ...]] = {}


def _model_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    names = _MODEL_FIELDS.get(cls)
    if names is None:
        names = _MODEL_FIELDS[cls] = tuple(
            name for name, info in cls.model_fields.items() if _may_hold_models(info.annotation))
    return names


def attach(model: Any, loc: Located) -> None:
    """Give a validated model tree its source positions (private attrs only). Only models
    hold positions: scalars, and containers of scalars only, are not visited."""
    if isinstance(model, Model):
        model.__pydantic_private__["_loc"] = loc  # type: ignore[index]
        # the field values are the instance __dict__ (BaseModel.model_fields, a class
        # property, cost 0.1 ms a call)
        values = model.__dict__
        items: Any = [(name, values[name]) for name in _model_fields(type(model))]
    elif isinstance(model, dict):
        items = model.items()
    elif isinstance(model, (list, tuple)):
        items = enumerate(model)
    else:
        return
    for key, value in items:
        if isinstance(value, _NESTED) and _holds_models(value):
            attach(value, loc.sub(key))


# --- toolkit.yaml -------------------------------------------------------------


class Organization(Model):
    name: str
    postal_address: str | None = None
    verified_domains: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    # Web fonts the organization hosts itself: {family: https url}. Empty means system fonts only.
    fonts: dict[str, str] = Field(default_factory=dict)
    lang: str = "en"
    # The web copy of a campaign the organization hosts (templates' `view_online_url`);
    # `{campaign}` becomes the campaign id. None: templates must not link to one (CFG-002).
    view_online_url: str | None = None

    @field_validator("view_online_url")
    @classmethod
    def _https(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith("https://"):
            raise ValueError("must be an https:// URL, e.g. "
                             "https://<your domain>/messages/{campaign}")
        return url


class Sender(Model):
    from_name: str | None = None
    from_address: str | None = None
    reply_to: str | None = None
    ad_label: str | None = None
    postal_address: str | None = None


class Relay(Model):
    host: str
    port: int = 587
    tls: Literal["starttls", "implicit"] = "starttls"
    ca_file: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    guarantees_encryption: bool = False
    dkim_signs: bool = False
    max_connections: int = Field(default=8, ge=1, le=256)
    rate_per_second: float = Field(default=50, gt=0)
    timeout_seconds: float = Field(default=30, gt=0)
    # retries of 4xx replies and failed connections: attempts, and the first backoff
    # (doubling to 30 s); lower both only where a relay must be given up on quickly
    retry_attempts: int = Field(default=5, ge=1, le=20)
    retry_delay_seconds: float = Field(default=0.5, gt=0, le=30)


class Unsubscribe(Model):
    url: str | None = None
    mailto: str | None = None
    secret_env: str = "UNSUBSCRIBE_SECRET"


class Approvals(Model):
    required_roles: tuple[str, ...] = ("legal",)


class Audit(Model):
    path: str = ".campaign/audit.jsonl"
    key_env: str = "AUDIT_KEY"
    retention_years: float = 6


class Dkim(Model):
    """The toolkit's own DKIM signing (optional): key PEM in an environment variable."""

    domain: str
    selector: str
    private_key_env: str = "DKIM_PRIVATE_KEY"


class ToolkitConfig(Model):
    organization: Organization
    senders: dict[str, Sender] = Field(default_factory=dict)
    relays: dict[str, Relay] = Field(default_factory=dict)
    unsubscribe: Unsubscribe = Field(default_factory=Unsubscribe)
    approvals: Approvals = Field(default_factory=Approvals)
    audit: Audit = Field(default_factory=Audit)
    state: str = ".campaign/"
    dkim: Dkim | None = None


# --- campaigns ----------------------------------------------------------------


class AuthorizationRef(Model):
    scope: str


class Delivery(Model):
    relay: str = "default"
    encryption: Literal["tls-required", "smime-preferred", "smime-required"] = "tls-required"
    # Send plain (non-S/MIME) copies only to recipients with unencrypted_email_ok (164.522(b)).
    require_unencrypted_consent: bool = False


class Waiver(Model):
    rule: str
    reason: str = Field(min_length=1)


class Campaign(Model):
    title: str
    purpose: str | None = None
    remuneration: Literal["none", "cost-based", "third-party"] = "none"
    commercial: bool | None = None
    consent: Literal["affirmative"] | None = None
    sender: str
    subject: str
    preheader: str = ""
    template: str
    segment: str
    phi_fields: tuple[str, ...] = ()
    authorization: AuthorizationRef | None = None
    delivery: Delivery = Field(default_factory=Delivery)
    schedule: dt.datetime | dt.date | None = None
    waivers: tuple[Waiver, ...] = ()

    # set by the loader, not part of the file
    _id: str = PrivateAttr(default="")
    _file: str = PrivateAttr(default="")

    @property
    def id(self) -> str:
        return self.__pydantic_private__["_id"]  # type: ignore[index,no-any-return]

    @property
    def file(self) -> str:
        return self.__pydantic_private__["_file"]  # type: ignore[index,no-any-return]


# --- policy ---------------------------------------------------------------------


class FieldSpec(Model):
    type: Literal[
        "string", "integer", "number", "boolean", "date", "datetime", "email", "list[string]"
    ]
    class_: Literal["identifier", "demographic", "clinical", "none"] = Field(alias="class")
    description: str | None = None
    fundraising: bool = False
    prescription: bool = False
    pattern: str | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def cls(self) -> str:
        return self.class_


class FieldsFile(Model):
    fields: dict[str, FieldSpec]


class PurposeSpec(Model):
    base: str
    description: str | None = None


class PurposesFile(Model):
    purposes: dict[str, PurposeSpec] = Field(default_factory=dict)


class Approver(Model):
    name: str
    role: str
    public_key: str
    github: str | None = None  # GitHub login allowed to approve this role from PR review


class ApproversFile(Model):
    approvers: tuple[Approver, ...] = ()


class AuthorizationForm(Model):
    title: str | None = None
    information: str | None = None
    recipients_of_information: str | None = None
    purposes: tuple[str, ...] = ()
    expiration: str | None = None
    revocation: str | None = None
    conditioning: str | None = None
    redisclosure: str | None = None
    remuneration_statement: str | None = None

    _scope: str = PrivateAttr(default="")

    @property
    def scope(self) -> str:
        return self.__pydantic_private__["_scope"]  # type: ignore[index,no-any-return]


class SegmentFile(Model):
    description: str | None = None
    where: Any = None


# --- segments (hand-parsed: a recursive condition tree) -----------------------------

OPERATORS = (
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "contains",
    "exists",
    "within_days",
    "older_than_days",
)


@dataclass(frozen=True)
class Leaf:
    field: str
    op: str
    value: Any
    pos: Pos
    loc: Located = field(repr=False, compare=False)


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]
    pos: Pos


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]
    pos: Pos


@dataclass(frozen=True)
class Not:
    item: Condition
    pos: Pos


Condition = Leaf | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Segment:
    id: str
    file: str
    description: str | None
    where: Condition | None
    loc: Located = field(repr=False, compare=False)

    def leaves(self) -> list[Leaf]:
        return list(self._leaves)

    # the rules ask for every campaign of the segment: walked once
    @cached_property
    def _leaves(self) -> tuple[Leaf, ...]:
        out: list[Leaf] = []

        def walk(c: Condition | None) -> None:
            if isinstance(c, Leaf):
                out.append(c)
            elif isinstance(c, (AllOf, AnyOf)):
                for i in c.items:
                    walk(i)
            elif isinstance(c, Not):
                walk(c.item)

        walk(self.where)
        return tuple(out)


# --- templates and personas ---------------------------------------------------------


@dataclass(frozen=True)
class Template:
    name: str  # path under templates/, e.g. "newsletter.mjml" or "partials/footer.mjml"
    file: str  # path relative to the repository root
    source: str


@dataclass(frozen=True)
class Persona:
    name: str
    contact: dict[str, Any]
    loc: Located = field(repr=False, compare=False)


# --- the repository -----------------------------------------------------------------


@dataclass(frozen=True)
class Repo:
    root: Path
    config: ToolkitConfig | None
    campaigns: dict[str, Campaign]
    segments: dict[str, Segment]
    templates: dict[str, Template]
    fields: dict[str, FieldSpec]
    purposes: dict[str, PurposeSpec]
    approvers: tuple[Approver, ...]
    authorizations: dict[str, AuthorizationForm]
    personas: dict[str, Persona]
    # canonical (whitespace-free) data of every YAML file, by path relative to root; for digests
    documents: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # the text of every YAML file read (even one that did not parse), by relative path: what
    # lint's CNT-002 scan and the lint cache's keys read, instead of reading files again
    texts: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def base_purpose(self, purpose: str | None) -> str | None:
        """The built-in purpose an organization purpose maps onto (or itself)."""
        if purpose is None:
            return None
        if purpose in PURPOSES:
            return purpose
        spec = self.purposes.get(purpose)
        return spec.base if spec and spec.base in PURPOSES else None

    def is_commercial(self, campaign: Campaign) -> bool:
        base = self.base_purpose(campaign.purpose)
        default = PURPOSES[base][1] if base else True
        return bool(default or campaign.commercial)

    def template_for(self, campaign: Campaign) -> Template | None:
        name = (
            campaign.template
            if campaign.template.endswith(".mjml")
            else f"{campaign.template}.mjml"
        )
        return self.templates.get(name)

    def clinical_fields(self) -> set[str]:
        return {n for n, f in self.fields.items() if f.cls == "clinical"}
