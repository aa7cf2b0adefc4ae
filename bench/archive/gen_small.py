#!/usr/bin/env python3
"""Synthetic index-scale data set for the C-FIND scale benchmark (issue 4): many small CT instances (8x8 pixels) in
realistic patient/study/series shapes, with a manifest.json in the format ../shared/bench/bench_dicom.py reads, so its
`find` test can check match counts. The index, not the pixels, is what grows; files are about 1.5 KB each.

    /usr/bin/python3 bench/archive/gen_small.py --out DIR [--patients 10000] [--studies-per-patient 2] [--instances-per-study 5]
"""
import argparse, datetime as dt, json, os, random
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset

LAST = ["SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ", "HERNANDEZ",
        "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ",
        "THOMPSON", "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN",
        "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL",
        "RIVERA", "CAMPBELL", "MITCHELL", "CARTER", "ROBERTS", "MULLER", "SCHMIDT", "SCHNEIDER", "FISCHER", "WEBER"]
FIRST = ["JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID", "ELIZABETH", "WEI",
         "ANNA", "LUCAS", "SOFIA", "NOAH", "EMMA", "OMAR", "FATIMA", "HIRO", "YUKI"]


def uid(rng):
    return "2.25.%d" % rng.getrandbits(126)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--patients", type=int, default=10000)
    ap.add_argument("--studies-per-patient", type=int, default=2)
    ap.add_argument("--instances-per-study", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20261204)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    pixels = bytes(128)
    patients, studies, count = [], [], 0
    base = dt.date(2015, 1, 1)
    for p in range(a.patients):
        pid = "%08d" % rng.randrange(10**8)
        name = "%s^%s" % (rng.choice(LAST), rng.choice(FIRST))
        pat = {"PatientID": pid, "PatientName": name, "PatientSex": rng.choice("MF"),
               "PatientBirthDate": (dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(25000))).strftime("%Y%m%d"), "studies": []}
        for s in range(a.studies_per_patient):
            st_uid, se_uid = uid(rng), uid(rng)
            date = (base + dt.timedelta(days=rng.randrange(3650))).strftime("%Y%m%d")
            acc = "A%08d" % rng.randrange(10**8)
            d = os.path.join("CT", pid, acc)
            os.makedirs(os.path.join(a.out, d), exist_ok=True)
            for i in range(a.instances_per_study):
                meta = FileMetaDataset()
                meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
                meta.MediaStorageSOPInstanceUID = uid(rng)
                meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
                ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
                ds.is_little_endian, ds.is_implicit_VR = True, False
                ds.SpecificCharacterSet = "ISO_IR 100"
                ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
                ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = name, pid, pat["PatientSex"], pat["PatientBirthDate"]
                ds.StudyInstanceUID, ds.SeriesInstanceUID = st_uid, se_uid
                ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = date, "101500", acc, str(s + 1)
                ds.StudyDescription, ds.ReferringPhysicianName = "CT SCALE TEST", "CARTER^JOHN"
                ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, i + 1
                ds.Rows = ds.Columns = 8
                ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
                ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
                ds.PixelData = pixels
                ds.save_as(os.path.join(a.out, d, "%d.dcm" % i), write_like_original=False)
                count += 1
            pat["studies"].append(st_uid)
            studies.append({"StudyInstanceUID": st_uid, "StudyDate": date, "AccessionNumber": acc, "PatientID": pid,
                            "Modality": "CT", "NumberOfStudyRelatedSeries": 1,
                            "NumberOfStudyRelatedInstances": a.instances_per_study, "dir": d,
                            "series": [{"SeriesInstanceUID": se_uid, "instances": a.instances_per_study}]})
        patients.append(pat)
    man = {"generator": "bench/archive/gen_small.py", "seed": a.seed, "pydicom": pydicom.__version__,
           "transfer_syntax": "1.2.840.10008.1.2.1", "created": dt.datetime.now().isoformat(timespec="seconds"),
           "totals": {"instances": count, "patients": len(patients), "studies": len(studies)},
           "patients": patients, "studies": studies}
    with open(os.path.join(a.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(man, f)
    print("%d instances, %d studies, %d patients in %s" % (count, len(studies), len(patients), a.out))


if __name__ == "__main__":
    main()
