"""Guidelines are Markdown documents with a small YAML front matter; this module reads them."""

import hashlib
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from labelagent.errors import GuidelineError
from labelagent.safe_text import control_character, shown

TaskType = Literal["classification", "multilabel", "preference", "rating", "spans"]
TASKS: tuple[str, ...] = TaskType.__args__

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)(.*)\Z", re.DOTALL)
MAX_GUIDELINE_BYTES = 1_000_000


class _Loader(yaml.SafeLoader):
    """Safe YAML that keeps `yes`, `no`, `on`, `off` and `null` as the words written (label names
    are words, not booleans), refuses a key given twice, and refuses aliases (*name): a front
    matter never needs them, and nested aliases expand exponentially (a "billion laughs")."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed here", self.peek_event().start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:null")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class Scale(BaseModel):
    min: int
    max: int


class Guideline(BaseModel):
    """A parsed guideline. `content_hash` identifies the exact text every label was made under."""

    name: str
    task: TaskType
    labels: dict[str, str] = {}
    fields: list[str]
    scale: Scale | None = None
    dimensions: dict[str, str] = {}
    body: str
    path: str
    content_hash: str
    text: str = Field(repr=False)  # the whole file, stored in the log with every label
    remote_images: bool = False  # the review app may load the body's images from other hosts

    @property
    def label_names(self) -> list[str]:
        return list(self.labels)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()[:16]


def load_guideline(path: str | Path) -> Guideline:
    path = Path(path)
    if path.is_dir():
        raise GuidelineError(f"{path} is a directory, not a guideline file")
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_GUIDELINE_BYTES + 1)
    except FileNotFoundError:
        raise GuidelineError(f"{path}: no such guideline file") from None
    except OSError as e:
        raise GuidelineError(f"{path}: cannot read the guideline ({e.strerror})") from None
    _check_size(len(raw), str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise GuidelineError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    return parse_guideline(text, str(path))


def parse_guideline(text: str, path: str = "<guideline>") -> Guideline:
    _check_size(len(text.encode("utf-8", "surrogatepass")), path)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    match = _FRONT_MATTER.match(text)
    if not match:
        raise GuidelineError(f"{path}: no front matter; the file must start with a '---' line")
    try:
        meta = yaml.load(match.group(1) or "", Loader=_Loader) or {}
    except yaml.YAMLError as e:
        raise GuidelineError(f"{path}: the front matter is not valid YAML: {e}") from None
    except RecursionError:
        raise GuidelineError(f"{path}: the front matter is nested too deeply") from None
    if not isinstance(meta, dict):
        raise GuidelineError(f"{path}: the front matter must be a mapping of keys to values")
    return _build(meta, match.group(2), text, path)


def _check_size(n_bytes: int, path: str) -> None:
    """Every request carries the whole guideline, and the log stores it with every run."""
    if n_bytes > MAX_GUIDELINE_BYTES:
        raise GuidelineError(
            f"{path}: the guideline is over the limit of {MAX_GUIDELINE_BYTES:,} bytes; it is "
            "sent with every request, so keep it to the rules and a few worked examples"
        )


def _build(meta: dict, body: str, text: str, path: str) -> Guideline:
    from labelagent.tasks import task_named  # the tasks read Guideline, so they come in only here

    task = meta.get("task")
    if task not in TASKS:
        raise GuidelineError(f"{path}: task {task!r} is unknown; use one of {', '.join(TASKS)}")
    task_type = task_named(task)
    labels = _labels(meta.get("labels"), path) or dict(task_type.default_labels)
    needed = task_type.min_labels
    if len(labels) < needed:
        count = "one label" if needed == 1 else "two labels"
        raise GuidelineError(f"{path}: a {task} guideline needs at least {count} under 'labels'")
    fields = meta.get("fields", list(task_type.default_fields))
    if (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(f, str) and f.strip() for f in fields)
    ):
        raise GuidelineError(f"{path}: 'fields' must be a list of item field names")
    if len(set(fields)) != len(fields):
        raise GuidelineError(f"{path}: 'fields' names a field twice: {fields}")
    extra = task_type.front_matter(meta, fields, path)
    try:
        return Guideline(
            name=str(meta.get("name") or Path(path).stem),
            task=task,
            labels=labels,
            fields=fields,
            body=body.strip(),
            path=path,
            content_hash=content_hash(text),
            text=text,
            remote_images=str(meta.get("remote_images", "")).lower() in ("true", "yes"),
            **extra,
        )
    except ValidationError as e:
        raise GuidelineError(f"{path}: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from None


def _labels(raw: object, path: str) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        pairs = [(name, None) for name in raw]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise GuidelineError(f"{path}: 'labels' must map each label to its definition")
    labels: dict[str, str] = {}
    for key, definition in pairs:
        if isinstance(key, dict | list):
            raise GuidelineError(f"{path}: a label name must be a word, not {key!r}")
        name = str(key).strip()
        if not name:
            raise GuidelineError(f"{path}: a label name is empty")
        if name in labels:
            raise GuidelineError(f"{path}: label '{shown(name)}' is given twice")
        if control_character(name):
            raise GuidelineError(f"{path}: label '{shown(name)}' contains a control character")
        if isinstance(definition, dict | list):
            raise GuidelineError(f"{path}: the definition of label {name!r} must be text")
        labels[name] = "" if definition is None else str(definition).strip()
    return labels
