"""The official pretrained models: where each is published, what it translates, and how test.py runs it.

Every URL was copied from the official repository named in ``source``, never guessed. No publisher gives a
checksum, so ``sha256`` stays None here: ``python -m util.zoo get`` records the checksum of the first
complete download in the experiment folder (``zoo.json``) and checks the files against it afterwards.

Hosts that only serve through a browser page (Google Drive, OneDrive) are ``manual``: the zoo says where to
download by hand and imports the downloaded file with ``--file``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ZooModel:
    """One pretrained model.

    Args:
        name: zoo name and experiment folder name.
        method, dataset, direction: what the table shows.
        url: the download (for ``archive`` entries: the archive that holds several models).
        source: the official repository and file that publish ``url``.
        files: file name in the experiment folder (``member``: its path suffix inside the archive).
        test_args: test.py options that rebuild the published architecture.
        archive_member: the file's path suffix inside ``url`` when ``url`` is a tar archive.
        manual: a browser is needed (Drive/OneDrive): ``get --file PATH`` imports the downloaded file.
        unavailable: why the zoo cannot import it (the published format is not one this framework reads).
        sha256: the publisher's checksum, when there is one.
    """

    name: str
    method: str
    dataset: str
    direction: str
    url: str
    source: str
    file: str
    test_args: tuple[str, ...]
    archive_member: str = ""
    manual: bool = False
    unavailable: str = ""
    sha256: str | None = None
    notes: str = field(default="", compare=False)


CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{}.pth"
CYCLEGAN_SOURCE = "junyanz/pytorch-CycleGAN-and-pix2pix: scripts/download_cyclegan_model.sh"
# The official test of these files: --model test --no_dropout (resnet_9blocks, 64 filters, instance norm).
CYCLEGAN_ARGS = (
    "--model",
    "test",
    "--no_dropout",
    "--netG",
    "resnet_9blocks",
    "--ngf",
    "64",
    "--norm",
    "instance",
)
CYCLEGAN = [  # (name, dataset, direction), in the order of the official script
    ("apple2orange", "apple2orange", "apple -> orange"),
    ("orange2apple", "apple2orange", "orange -> apple"),
    ("summer2winter_yosemite", "summer2winter_yosemite", "summer -> winter"),
    ("winter2summer_yosemite", "summer2winter_yosemite", "winter -> summer"),
    ("horse2zebra", "horse2zebra", "horse -> zebra"),
    ("zebra2horse", "horse2zebra", "zebra -> horse"),
    ("monet2photo", "monet2photo", "Monet painting -> photo"),
    ("style_monet", "monet2photo", "photo -> Monet painting"),
    ("style_cezanne", "cezanne2photo", "photo -> Cezanne painting"),
    ("style_ukiyoe", "ukiyoe2photo", "photo -> Ukiyo-e print"),
    ("style_vangogh", "vangogh2photo", "photo -> Van Gogh painting"),
    ("sat2map", "maps", "satellite photo -> map"),
    ("map2sat", "maps", "map -> satellite photo"),
    ("cityscapes_photo2label", "cityscapes", "street photo -> label map"),
    ("cityscapes_label2photo", "cityscapes", "label map -> street photo"),
    ("facades_photo2label", "facades", "facade photo -> label map"),
    ("facades_label2photo", "facades", "label map -> facade photo"),
    ("iphone2dslr_flower", "iphone2dslr_flower", "iPhone photo -> DSLR photo (shallow depth of field)"),
]

CUT_URL = "http://efrosgans.eecs.berkeley.edu/CUT/pretrained_models.tar"
CUT_SOURCE = "taesungp/contrastive-unpaired-translation: README.md, experiments/pretrained_launcher.py"
CUT = [  # (zoo name, official folder, method, dataset, direction); cityscapes runs --direction BtoA officially
    ("horse2zebra_cut", "horse2zebra_cut_pretrained", "CUT", "horse2zebra", "horse -> zebra"),
    ("horse2zebra_fastcut", "horse2zebra_fastcut_pretrained", "FastCUT", "horse2zebra", "horse -> zebra"),
    ("cat2dog_cut", "cat2dog_cut_pretrained", "CUT", "AFHQ cat2dog", "cat -> dog"),
    ("cat2dog_fastcut", "cat2dog_fastcut_pretrained", "FastCUT", "AFHQ cat2dog", "cat -> dog"),
    ("cityscapes_cut", "cityscapes_cut_pretrained", "CUT", "cityscapes", "label map -> street photo"),
    (
        "cityscapes_fastcut",
        "cityscapes_fastcut_pretrained",
        "FastCUT",
        "cityscapes",
        "label map -> street photo",
    ),
]
CUT_ARGS = ("--model", "cut", "--netG", "resnet_9blocks", "--ngf", "64", "--norm", "instance")

TUNIT_URL = "https://1drv.ms/u/s!AprVWp5MreFV8BLY22ias4Gt1ZtO?e=IYsUwX"
TUNIT_SOURCE = "clovaai/tunit: README.md (Pretrained Model)"
TUNIT = [  # (official folder, dataset, size, p_semi)
    ("afhq_cat_128", "AFHQ cat", 128, 0.0),
    ("afhq_cat_256", "AFHQ cat", 256, 0.0),
    ("afhq_dog_128", "AFHQ dog", 128, 0.0),
    ("afhq_dog_256", "AFHQ dog", 256, 0.0),
    ("afhq_wild_128", "AFHQ wild", 128, 0.0),
    ("afhq_wild_256", "AFHQ wild", 256, 0.0),
    ("animalFaces10_0_00", "AnimalFaces-10", 128, 0.0),
    ("animalFaces10_0_20", "AnimalFaces-10", 128, 0.2),
]

UNIT_URL = "https://drive.google.com/open?id=1R9MH_p8tDmUsIAjKCu-jgoilWgANfObx"
UNIT_SOURCE = "mingyuliutw/UNIT: TUTORIAL.md (Pretrained models), configs/unit_gta2city_list.yaml"
# configs/unit_gta2city_list.yaml: gen dim 64, 2 downsamplings, 4 residual blocks, relu, reflect padding, 512 px.
UNIT_ARGS = (
    "--model", "unit", "--ngf", "64", "--n_downsample", "2", "--n_res", "4", "--gen_activ", "relu",
    "--gen_pad_type", "reflect", "--load_size", "512", "--crop_size", "512",
)  # fmt: skip

UGATIT_URL = "https://drive.google.com/file/d/19xQK2onIy-3S5W5K-XIh85pAg_RNvBVf/view?usp=sharing"
UGATIT_SOURCE = "taki0112/UGATIT: README.md (Pretrained model); znxlwm/UGATIT-pytorch publishes none"


def _registry() -> dict[str, ZooModel]:
    models = [
        ZooModel(name, "CycleGAN", dataset, direction, CYCLEGAN_URL.format(name), CYCLEGAN_SOURCE,
                 "latest_net_G.pth", CYCLEGAN_ARGS)
        for name, dataset, direction in CYCLEGAN
    ]  # fmt: skip
    models += [
        ZooModel(name, method, dataset, direction, CUT_URL, CUT_SOURCE, "latest_net_G.pth", CUT_ARGS,
                 archive_member=f"{folder}/latest_net_G.pth")
        for name, folder, method, dataset, direction in CUT
    ]  # fmt: skip
    models += [
        ZooModel(
            f"tunit_{folder}", "TUNIT", dataset, "image -> style of a cluster or a reference",
            TUNIT_URL, TUNIT_SOURCE, "model_<N>.ckpt",
            ("--model", "tunit", "--output_k", "10", "--load_size", str(size), "--crop_size", str(size)),
            manual=True, notes=f"model_<N>.ckpt of the folder {folder} (p_semi {p_semi}) in the OneDrive share",
        )
        for folder, dataset, size, p_semi in TUNIT
    ]  # fmt: skip
    models.append(
        ZooModel("unit_gta2city", "UNIT", "GTA5 -> Cityscapes", "game frame <-> street photo", UNIT_URL,
                 UNIT_SOURCE, "unit_gta2city.pt", UNIT_ARGS, manual=True)
    )  # fmt: skip
    models.append(
        ZooModel("ugatit_selfie2anime", "U-GAT-IT", "selfie2anime", "selfie -> anime face", UGATIT_URL,
                 UGATIT_SOURCE, "", (), manual=True,
                 unavailable="the only published weights are TensorFlow checkpoints, which this framework "
                 "does not import (it reads the PyTorch *_params_*.pt layout)")
    )  # fmt: skip
    return {m.name: m for m in models}


REGISTRY: dict[str, ZooModel] = _registry()
