"""Class names of the class-conditional models: ``--class PlayingGuitar`` and ``--list-classes``.

A config names its list with a top-level ``class_names = "ucf101"`` (or "imagenet", "shapes"); its
length must equal the model's ``num_classes``. Names match exactly, up to case, spaces, ``_`` and ``-``
(:func:`normalize`): ``golden retriever``, ``Golden_Retriever`` and ``goldenretriever`` are class 207.
"""
import difflib
from pathlib import Path

from ..errors import ConfigError, UserError
from .shapes import CLASS_NAMES as SHAPES_CLASS_NAMES

CONFIG_KEY = "class_names"  # the top-level config entry naming a config's list
CLOSE_MATCHES = 3  # suggestions in the unknown-name error
CLOSE_MATCH_CUTOFF = 0.6  # difflib similarity below which a name is not suggested

LISTS_DIR = Path(__file__).with_name("class_lists")  # one name per line, in class-id order (package data)


def _read_list(name: str) -> tuple[str, ...]:
    return tuple((LISTS_DIR / f"{name}.txt").read_text().splitlines())


# UCF-101's 101 action folders in Python's sorted() order, which is how Latte's training set numbers them
# (datasets/ucf101_datasets.py: find_classes). It is case-sensitive, so it differs from the dataset's own
# classInd.txt in two places: HammerThrow (34) before Hammering (35), JumpRope (46) before JumpingJack (47).
UCF101 = _read_list("ucf101")
# ImageNet-1k in class-index order (the synset order of ILSVRC-2012, as DiT's labels), the first synonym of
# each synset's words: 0 tench, 207 golden retriever, 999 toilet tissue. Two first synonyms repeat:
# "crane" (134 the bird, 517 the machine) and "maillot" (638, 639); those take their id.
IMAGENET = _read_list("imagenet")
CLASS_LISTS = {"ucf101": UCF101, "imagenet": IMAGENET, "shapes": tuple(SHAPES_CLASS_NAMES)}


def normalize(name: str) -> str:
    """The matching key of a class name: lower case without spaces, ``_`` or ``-``."""
    return "".join(ch for ch in name.lower() if ch not in " _-")


def config_class_names(cfg, num_classes: int, where: str) -> tuple[str, ...] | None:
    """The class list a config names (None when it names none); its length must be ``num_classes``."""
    list_name = cfg.get(CONFIG_KEY)
    if list_name is None:
        return None
    if isinstance(list_name, (list, tuple)):  # the names themselves
        names = tuple(str(name) for name in list_name)
        if len(names) != num_classes:
            raise ConfigError(f"{where}: {CONFIG_KEY} lists {len(names)} names but the model has "
                              f"num_classes={num_classes}; fix one of the two")
        return names
    if not isinstance(list_name, str) or list_name not in CLASS_LISTS:
        raise ConfigError(f"{where}: unknown {CONFIG_KEY} {list_name!r}; choose one of {', '.join(CLASS_LISTS)} "
                          f"or give the list of names")
    names = CLASS_LISTS[list_name]
    if len(names) != num_classes:
        raise ConfigError(f"{where}: {CONFIG_KEY} {list_name!r} has {len(names)} classes but the model has "
                          f"num_classes={num_classes}; fix one of the two")
    return names


def resolve_class(token: str, names: tuple[str, ...] | None, num_classes: int) -> int:
    """The class id of ``token``: an id ("62") or a name ("PlayingGuitar"); a UserError otherwise.

    Ids are returned as given (the generator checks their range).
    """
    try:
        return int(token)
    except ValueError:
        pass
    if names is None:
        raise UserError(f"--class: invalid int value: {token!r} (this config names no classes, so --class takes "
                        f"ids 0..{num_classes - 1}; set {CONFIG_KEY} in the config to use names)")
    key = normalize(token)
    ids = [i for i, name in enumerate(names) if normalize(name) == key]
    if len(ids) > 1:
        raise UserError(f"--class {token!r} names {len(ids)} classes ({', '.join(map(str, ids))}); pass the id")
    if ids:
        return ids[0]
    keys = [normalize(name) for name in names]
    close = difflib.get_close_matches(key, keys, n=CLOSE_MATCHES, cutoff=CLOSE_MATCH_CUTOFF)
    hint = ", ".join(f"{names[keys.index(k)]} ({keys.index(k)})" for k in close)
    raise UserError(f"unknown class {token!r}: " + (f"closest are {hint}" if close else "no close match")
                    + "; see --list-classes")


def class_table(names: tuple[str, ...] | None, num_classes: int) -> str:
    """One ``id  name`` line per class (ids only when the config names no classes)."""
    width = len(str(max(num_classes - 1, 0)))
    if names is None:
        return "\n".join(f"{i:>{width}}" for i in range(num_classes))
    return "\n".join(f"{i:>{width}}  {name}" for i, name in enumerate(names))


def model_num_classes(cfg) -> int | None:
    """The ``num_classes`` a config gives its model (None when it leaves the model's default)."""
    model = cfg.get("model") or {}
    return model.get("num_classes", cfg.get("num_classes"))
