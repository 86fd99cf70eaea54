"""Class-name lists and --class resolution: counts, known indices, Latte's UCF-101 order, matching rules."""
import pytest

from opensora_lite.config import load_config
from opensora_lite.data.class_names import (
    CLASS_LISTS,
    IMAGENET,
    UCF101,
    config_class_names,
    model_num_classes,
    normalize,
    resolve_class,
)
from opensora_lite.errors import ConfigError, UserError

from helpers import ROOT


def test_imagenet_has_the_1000_classes_in_index_order():
    assert len(IMAGENET) == 1000 and all(name == name.strip() and name for name in IMAGENET)
    known = {0: "tench", 1: "goldfish", 9: "ostrich", 130: "flamingo", 207: "golden retriever", 281: "tabby",
             291: "lion", 340: "zebra", 388: "giant panda", 417: "balloon", 504: "coffee mug", 779: "school bus",
             817: "sports car", 948: "Granny Smith", 963: "pizza", 980: "volcano", 999: "toilet tissue"}
    assert {i: IMAGENET[i] for i in known} == known


def test_ucf101_is_latte_sorted_folder_order():
    assert len(UCF101) == len(set(UCF101)) == 101 and list(UCF101) == sorted(UCF101)  # Latte's find_classes
    assert (UCF101[0], UCF101[62], UCF101[100]) == ("ApplyEyeMakeup", "PlayingGuitar", "YoYo")
    assert UCF101.index("HammerThrow") == 34 and UCF101.index("JumpRope") == 46  # case-sensitive sort
    assert CLASS_LISTS["shapes"][5] == "square-left"


def test_names_match_ignoring_case_spaces_underscores_and_dashes():
    assert resolve_class("PlayingGuitar", UCF101, 101) == resolve_class("playing_guitar", UCF101, 101) == 62
    assert resolve_class("Golden-Retriever", IMAGENET, 1000) == resolve_class("goldenretriever", IMAGENET, 1000) == 207
    assert resolve_class("SQUARE left", CLASS_LISTS["shapes"], 12) == 5
    assert resolve_class("7", UCF101, 101) == 7 and normalize("a_B -c") == "abc"
    with pytest.raises(UserError, match=r"unknown class 'golden retreiver': closest are golden retriever \(207\)"):
        resolve_class("golden retreiver", IMAGENET, 1000)
    with pytest.raises(UserError, match=r"names 2 classes \(134, 517\); pass the id"):
        resolve_class("crane", IMAGENET, 1000)
    with pytest.raises(UserError, match="invalid int value: 'cat'.*names no classes"):
        resolve_class("cat", None, 3)


def test_every_conditional_config_names_a_list_of_its_size():
    for name, expect in (("configs/latte/ucf101_256.py", UCF101), ("configs/dit_xl2_256_video.py", IMAGENET),
                         ("configs/stdit_256.py", IMAGENET), ("configs/shapes/stdit_shapes.py", CLASS_LISTS["shapes"])):
        cfg = load_config(str(ROOT / name))
        assert config_class_names(cfg, model_num_classes(cfg), name) == expect
    with pytest.raises(ConfigError, match="has 101 classes but the model has num_classes=12"):
        config_class_names({"class_names": "ucf101"}, 12, "x.py")


def test_a_config_may_list_its_own_names():
    """A list of names (your own classes) used to be a traceback: TypeError: unhashable type: 'list'."""
    assert config_class_names({"class_names": ["testsrc2", "life"]}, 2, "x.py") == ("testsrc2", "life")
    assert resolve_class("Life", ("testsrc2", "life"), 2) == 1
    with pytest.raises(ConfigError, match="lists 2 names but the model has num_classes=3"):
        config_class_names({"class_names": ["testsrc2", "life"]}, 3, "x.py")
    with pytest.raises(ConfigError, match="unknown class_names 7"):
        config_class_names({"class_names": 7}, 3, "x.py")
