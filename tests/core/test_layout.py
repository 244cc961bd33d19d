from pathlib import Path

import pytest

from moca.data.layout import list_videos, mask_root
from moca.errors import DataError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_s4_paths_and_train_masks_only_for_frame_one(tmp_path):
    write(tmp_path / "Single-source/s4_meta_data.csv", "name,start,category,split\nvidA,0,dog,train\nvidB,1,cat,test\n")
    train, test = list_videos(tmp_path, "s4")
    assert train.audio == tmp_path / "Single-source/s4_data/audio_wav/train/dog/vidA.wav"
    assert train.frames[0].image == tmp_path / "Single-source/s4_data/visual_frames/train/dog/vidA/vidA_1.png"
    assert [f.mask is not None for f in train.frames] == [True, False, False, False, False]
    assert all(f.mask is not None for f in test.frames)
    assert test.frames[4].key == "cat/vidB/vidB_5"
    assert mask_root(tmp_path, "s4", "test") / f"{test.frames[4].key}.png" == test.frames[4].mask


def test_ms3_frames_have_mp4_names_and_no_split_folder(tmp_path):
    write(tmp_path / "Multi-sources/ms3_meta_data.csv", "video_id,split\nm1,val\n")
    (video,) = list_videos(tmp_path, "ms3", "val")
    assert video.frames[2].image == tmp_path / "Multi-sources/ms3_data/visual_frames/m1/m1.mp4_3.png"
    assert video.frames[2].mask == tmp_path / "Multi-sources/ms3_data/gt_masks/val/m1/m1_3.png"
    assert video.audio == tmp_path / "Multi-sources/ms3_data/audio_wav/val/m1.wav"


def test_avss_subsets(tmp_path):
    write(tmp_path / "metadata.csv", "vid,uid,s_min,label,split\nx,u1,0,v2,test\nx,u2,0,v1s,train\n")
    v2, v1s = list_videos(tmp_path, "avss")
    assert len(v2.frames) == 10 and v2.frames[9].image == tmp_path / "v2/u1/frames/9.jpg"
    assert v2.frames[9].mask == tmp_path / "v2/u1/labels_rgb/9.png"
    assert [f.mask is not None for f in v1s.frames] == [True, False, False, False, False]


@pytest.mark.parametrize("bad", ["../escape", "/abs/path", "a/b", ".."])
def test_unsafe_names_are_refused(tmp_path, bad):
    write(tmp_path / "Multi-sources/ms3_meta_data.csv", f"video_id,split\n{bad},train\n")
    with pytest.raises(DataError, match="ms3_meta_data.csv: row 2: unsafe name"):
        list_videos(tmp_path, "ms3")


def test_unknown_split_and_duplicates(tmp_path):
    csv = write(tmp_path / "Multi-sources/ms3_meta_data.csv", "video_id,split\nm1,holdout\n")
    with pytest.raises(DataError, match="row 2: unknown split 'holdout'"):
        list_videos(tmp_path, "ms3")
    csv.write_text("video_id,split\nm1,train\nm1,test\n")
    with pytest.raises(DataError, match="duplicate video name"):
        list_videos(tmp_path, "ms3")


def test_missing_metadata_names_the_file(tmp_path):
    with pytest.raises(DataError, match="s4_meta_data.csv: metadata CSV not found"):
        list_videos(tmp_path, "s4")
