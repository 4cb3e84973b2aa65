"""Test-side writers of the vendor XML formats (MUSE, HL7 aECG, Philips), a helper
that feeds one input to ecgingest as bytes, as a file on disk and inside a ZIP, and
one that reads documents in more threads than CPUs.

The writers follow the fact sheets, not the readers: a round trip through them
checks the reader against the format, not against itself.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

import ecgingest
from ecgingest.errors import EcgIngestError, EcgWarning

ENCODINGS = ("ISO-8859-1", "UTF-8", "UTF-16-LE", "UTF-16-BE", None)
"""Declared encodings the writers produce (None: UTF-8 without an XML declaration)."""


def encode_document(text: str, encoding: str | None) -> bytes:
    """An XML document body (no declaration) in ``encoding``, with declaration and BOM."""
    if encoding is None:
        return text.encode("utf-8")
    if encoding.startswith("UTF-16"):
        declared = f'<?xml version="1.0" encoding="UTF-16"?>\n{text}'
        bom = b"\xff\xfe" if encoding.endswith("LE") else b"\xfe\xff"
        return bom + declared.encode("utf-16-le" if encoding.endswith("LE") else "utf-16-be")
    return f'<?xml version="1.0" encoding="{encoding}"?>\n{text}'.encode(encoding)


# --------------------------------------------------------------------------- MUSE


def muse_document(rhythm: dict[str, np.ndarray], *, median: dict[str, np.ndarray] | None = None,
                  rate: int = 500, units_per_bit: float = 4.88, patient_last: str = "DOE",
                  patient_first: str = "JOHN", statements: Sequence[tuple[str, bool]] = (),
                  date: str = "04-29-2023", time: str = "22:41:16",
                  encoding: str | None = "ISO-8859-1", doctype: bool = True,
                  bad_crc_lead: str | None = None) -> bytes:
    """A RestingECG export: base64 little-endian int16 leads with their CRC-32."""

    def waveform(kind: str, leads: dict[str, np.ndarray]) -> str:
        parts = [f"<Waveform><WaveformType>{kind}</WaveformType>"
                 f"<WaveformStartTime>0</WaveformStartTime>"
                 f"<NumberofLeads>{len(leads)}</NumberofLeads>"
                 f"<SampleType>CONTINUOUS_SAMPLES</SampleType>"
                 f"<SampleBase>{rate}</SampleBase><SampleExponent>0</SampleExponent>"
                 f"<HighPassFilter>16</HighPassFilter><LowPassFilter>150</LowPassFilter>"
                 f"<ACFilter>60</ACFilter>"]
        for label, values in leads.items():
            raw = np.asarray(values, dtype="<i2").tobytes()
            crc = zlib.crc32(raw) ^ (1 if label == bad_crc_lead and kind == "Rhythm" else 0)
            text = base64.encodebytes(raw).decode("ascii")
            parts.append(
                f"<LeadData><LeadByteCountTotal>{len(raw)}</LeadByteCountTotal>"
                f"<LeadTimeOffset>0</LeadTimeOffset>"
                f"<LeadSampleCountTotal>{len(raw) // 2}</LeadSampleCountTotal>"
                f"<LeadAmplitudeUnitsPerBit>{units_per_bit}</LeadAmplitudeUnitsPerBit>"
                f"<LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits>"
                f"<LeadHighLimit>32767</LeadHighLimit><LeadLowLimit>-32768</LeadLowLimit>"
                f"<LeadID>{label}</LeadID><LeadOffsetFirstSample>0</LeadOffsetFirstSample>"
                f"<FirstSampleBaseline>0</FirstSampleBaseline><LeadSampleSize>2</LeadSampleSize>"
                f"<LeadOff>FALSE</LeadOff><BaselineSway>FALSE</BaselineSway>"
                f"<LeadDataCRC32>{crc}</LeadDataCRC32>"
                f"<WaveFormData>{text}</WaveFormData></LeadData>")
        parts.append("</Waveform>")
        return "".join(parts)

    stmts = "".join(
        f"<DiagnosisStatement>{'<StmtFlag>ENDSLINE</StmtFlag>' if ends else ''}"
        f"<StmtText>{escape(text)}</StmtText></DiagnosisStatement>" for text, ends in statements)
    body = (
        ('<!DOCTYPE RestingECG SYSTEM "restecg.dtd">\n' if doctype else "")
        + "<RestingECG><MuseInfo><MuseVersion>9.0.10.18530</MuseVersion></MuseInfo>"
        f"<PatientDemographics><PatientID>P-1</PatientID><PatientAge>43</PatientAge>"
        f"<AgeUnits>YEARS</AgeUnits><DateofBirth>07-08-1979</DateofBirth><Gender>FEMALE</Gender>"
        f"<PatientLastName>{escape(patient_last)}</PatientLastName>"
        f"<PatientFirstName>{escape(patient_first)}</PatientFirstName></PatientDemographics>"
        f"<TestDemographics><DataType>RESTING</DataType><SiteName>Clinique</SiteName>"
        f"<AcquisitionDevice>MAC55</AcquisitionDevice><Status>CONFIRMED</Status>"
        f"<AcquisitionTime>{time}</AcquisitionTime><AcquisitionDate>{date}</AcquisitionDate>"
        f"</TestDemographics>"
        f"<RestingECGMeasurements><VentricularRate>61</VentricularRate>"
        f"<PRInterval>150</PRInterval><QRSDuration>90</QRSDuration><QTInterval>400</QTInterval>"
        f"<QTCorrected>410</QTCorrected><PAxis>40</PAxis><RAxis>-10</RAxis><TAxis>50</TAxis>"
        f"</RestingECGMeasurements>"
        f"<Diagnosis><Modality>RESTING</Modality>{stmts}</Diagnosis>"
        + (waveform("Median", median) if median else "")
        + waveform("Rhythm", rhythm) + "</RestingECG>")
    return encode_document(body, encoding)


# --------------------------------------------------------------------------- HL7 aECG

MDC = {"I": "MDC_ECG_LEAD_I", "II": "MDC_ECG_LEAD_II", "III": "MDC_ECG_LEAD_III",
       "aVR": "MDC_ECG_LEAD_AVR", "aVL": "MDC_ECG_LEAD_AVL", "aVF": "MDC_ECG_LEAD_AVF",
       **{f"V{i}": f"MDC_ECG_LEAD_V{i}" for i in range(1, 7)}}


def aecg_document(rhythm: dict[str, np.ndarray], *, scale: float = 2.5, origin: float = 0.0,
                  increment: str = "0.002", increment_unit: str = "s",
                  beats: dict[str, np.ndarray] | None = None, beat_scale: float = 5.0,
                  head: str = "20021122091000.000", name: str = "Clark",
                  encoding: str | None = "UTF-8", annotations: Sequence[tuple[str, str, str]] = (),
                  digits_per_line: int = 20) -> bytes:
    """An AnnotatedECG with one rhythm series (and a representative-beat derived series)."""

    def digits(values: np.ndarray) -> str:
        items = [str(int(v)) for v in values]
        return "\n".join(" ".join(items[i:i + digits_per_line])
                         for i in range(0, len(items), digits_per_line))

    def sequence_set(time_code: str, time_type: str, head_xml: str,
                     leads: dict[str, np.ndarray], lead_scale: float) -> str:
        parts = [f'<component><sequenceSet><component><sequence>'
                 f'<code code="{time_code}" codeSystem="2.16.840.1.113883.5.4"/>'
                 f'<value xsi:type="{time_type}">{head_xml}'
                 f'<increment value="{increment}" unit="{increment_unit}"/></value>'
                 f'</sequence></component>']
        for label, values in leads.items():
            parts.append(
                f'<component><sequence><code code="{MDC.get(label, label)}" '
                f'codeSystem="2.16.840.1.113883.6.24"/><value xsi:type="SLIST_PQ">'
                f'<origin value="{origin}" unit="uV"/><scale value="{lead_scale}" unit="uV"/>'
                f'<digits>{digits(values)}</digits></value></sequence></component>')
        parts.append("</sequenceSet></component>")
        return "".join(parts)

    notes = "".join(
        f'<component><annotation><code code="{code}" codeSystem="2.16.840.1.113883.6.24"/>'
        f'<value xsi:type="PQ" value="{value}" unit="{unit}"/></annotation></component>'
        for code, value, unit in annotations)
    derived = ""
    if beats:
        derived = ('<derivation><derivedSeries><code code="REPRESENTATIVE_BEAT" '
                   'codeSystem="2.16.840.1.113883.5.4"/>'
                   + sequence_set("TIME_RELATIVE", "GLIST_PQ", '<head value="0" unit="s"/>',
                                  beats, beat_scale)
                   + "</derivedSeries></derivation>")
    body = (
        '<AnnotatedECG xmlns="urn:hl7-org:v3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<id root="61d1a24f"/><code code="93000" codeSystem="2.16.840.1.113883.6.12"/>'
        f'<effectiveTime><center value="{head[:14]}"/></effectiveTime>'
        '<componentOf><timepointEvent><componentOf><subjectAssignment><subject><trialSubject>'
        '<id root="2.16.840.1.113883.3.456" extension="SBJ-123"/><subjectDemographicPerson>'
        f'<name>{escape(name)}</name><administrativeGenderCode code="F"/>'
        '<birthTime value="19530508"/></subjectDemographicPerson></trialSubject></subject>'
        '</subjectAssignment></componentOf></timepointEvent></componentOf>'
        '<component><series><code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"/>'
        + sequence_set("TIME_ABSOLUTE", "GLIST_TS", f'<head value="{head}"/>', rhythm, scale)
        + (f"<subjectOf><annotationSet>{notes}</annotationSet></subjectOf>" if notes else "")
        + derived + "</series></component></AnnotatedECG>")
    return encode_document(body, encoding)


# --------------------------------------------------------------------------- feeding


def outcomes(raw: bytes, tmp_path: Path, name: str, intact: bytes | None = None,
             intact_name: str = "intact.xml") -> list[object]:
    """Read ``raw`` as bytes, as a file on disk and inside a ZIP (next to ``intact``).

    Returns, per source kind, the records read or the typed error raised; any
    other exception propagates (the test fails). In the ZIP the intact record
    must always come back, and a damaged entry must cost nothing else.
    """
    found: list[object] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        for source in (raw, tmp_path / name):
            if isinstance(source, Path):
                source.write_bytes(raw)
            try:
                found.append(ecgingest.read(source))
            except EcgIngestError as exc:
                found.append(exc)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(name, raw)
            if intact is not None:
                archive.writestr(intact_name, intact)
        result = ecgingest.ingest(buffer.getvalue())
        if intact is not None:
            assert any(r.name.endswith(intact_name) or intact_name in r.sources[0]
                       for r in result.records), "the intact record was lost"
        found.append(result)
    for outcome in found[:2]:
        assert isinstance(outcome, (list, EcgIngestError)), outcome
    return found


# --------------------------------------------------------------------------- Philips


def philips_document(leads: dict[str, np.ndarray], *, version: str = "1.04",
                     rate: int = 500, resolution: float = 5.0, start_date: str = "2010-01-19",
                     start_time: str = "15:19:22", last_name: str = "ZZDEMO",
                     statements: Sequence[tuple[str, str]] = (),
                     repbeats: dict[str, np.ndarray] | None = None, repbeat_rate: int = 1000,
                     repbeat_resolution: float = 2.5, encoding: str | None = None,
                     compression: str = "XLI", slots: int = 16) -> bytes:
    """A SierraECG 1.03 or PhilipsECG 1.04 document; ``leads`` are the stored values
    (residuals for III, aVR, aVL, aVF: see ``xli_encoder.residuals``)."""
    from xli_encoder import encode_leads

    labels = list(leads)
    n = len(next(iter(leads.values())))
    duration = n * 1000 // rate
    if compression == "XLI":
        raw = encode_leads([leads[label] for label in labels], slots=slots)
    else:
        raw = b"".join(np.asarray(leads[label], dtype="<i2").tobytes() for label in labels)
    text = base64.encodebytes(raw).decode("ascii")
    if version == "1.03":
        doctype = "SierraECG"
        signal = (f"<samplingrate>{rate}</samplingrate>"
                  f"<signalresolution>{resolution}</signalresolution>"
                  "<acquisitiontype>STD-12</acquisitiontype>"
                  f"<numberchannelsallocated>{len(labels)}</numberchannelsallocated>")
        flag = "True" if compression == "XLI" else "False"
        parsed = (f'<parsedwaveforms compressflag="{flag}" compressmethod="XLI" '
                  f'dataencoding="Base64" durationperchannel="{duration}" '
                  f'nbitspersample="16">{text}</parsedwaveforms>')
    else:
        doctype = "PhilipsECG"
        signal = (f"<samplingrate>{rate}</samplingrate><resolution>{resolution}</resolution>"
                  "<acquisitiontype>10-WIRE</acquisitiontype>")
        parsed = (f'<parsedwaveforms dataencoding="Base64" compression="{compression}" '
                  f'numberofleads="{len(labels)}" leadlabels="{" ".join(labels)}" '
                  f'durationperchannel="{duration}" samplespersecond="{rate}" '
                  f'resolution="{resolution}">{text}</parsedwaveforms>')
    beats = ""
    if repbeats:
        items = []
        for label, values in repbeats.items():
            data = base64.encodebytes(np.asarray(values, dtype="<i2").tobytes()).decode("ascii")
            inner = (f'<waveform duration="{len(values)}">{data}</waveform>'
                     if version != "1.03" else data)
            items.append(f'<repbeat leadname="{label}">{inner}</repbeat>')
        beats = (f'<repbeats dataencoding="Base64" samplespersec="{repbeat_rate}" '
                 f'resolution="{repbeat_resolution}" repbeatmethod="mean">'
                 + "".join(items) + "</repbeats>")
    stmts = "".join(f"<statement><statementcode/><leftstatement>{escape(left)}</leftstatement>"
                    f"<rightstatement>{escape(right)}</rightstatement></statement>"
                    for left, right in statements)
    body = (
        '<restingecgdata xmlns="http://www3.medical.philips.com">'
        f"<documentinfo><documenttype>{doctype}</documenttype>"
        f"<documentversion>{version}</documentversion></documentinfo>"
        f'<dataacquisition date="{start_date}" time="{start_time}">'
        '<machine machineid="EKG1" detaildescription="Philips">PageWriter Touch</machine>'
        f"<signalcharacteristics>{signal}</signalcharacteristics></dataacquisition>"
        "<patient><generalpatientdata><patientid>9999</patientid><name>"
        f"<lastname>{escape(last_name)}</lastname><firstname>ADULT</firstname></name>"
        "<age><years>50</years></age><sex>Female</sex></generalpatientdata></patient>"
        '<interpretations><interpretation date="2010-01-19" time="15:19:22">'
        "<globalmeasurements><heartrate>84</heartrate><qtint>352</qtint></globalmeasurements>"
        f"<mdsignatureline>Unconfirmed Diagnosis</mdsignatureline>{stmts}</interpretation>"
        f"</interpretations><waveforms>{parsed}{beats}</waveforms></restingecgdata>")
    return encode_document(body, encoding)


def mutate(raw: bytes, data: object, alphabet: bytes | None = None, changes: int = 8) -> bytes:
    """``raw`` with 1..``changes`` bytes replaced (from ``alphabet`` when given) and maybe
    cut short; ``data`` is hypothesis' ``st.data()``."""
    from hypothesis import strategies as st

    out = bytearray(raw)
    value = st.sampled_from(alphabet) if alphabet else st.integers(0, 255)
    for _ in range(data.draw(st.integers(1, changes))):  # type: ignore[attr-defined]
        out[data.draw(st.integers(0, len(out) - 1))] = data.draw(value)  # type: ignore
    if data.draw(st.booleans()):  # type: ignore[attr-defined]
        out = out[:data.draw(st.integers(0, len(out)))]  # type: ignore[attr-defined]
    return bytes(out)


def check_reads_in_threads(decode: Callable[[bytes], ecgingest.Record],
                           documents: Sequence[bytes], per_thread: int = 6) -> None:
    """Read ``documents`` in more threads than CPUs (after a thread that reads once and
    leaves): every read must end and give the signals one thread reads."""
    expected = [[s.digital for s in decode(data).signals] for data in documents]
    leaver = threading.Thread(target=decode, args=(documents[0],))
    leaver.start()
    leaver.join()

    def read(index: int) -> list[np.ndarray]:
        return [s.digital for s in decode(documents[index % len(documents)]).signals]

    threads = (os.cpu_count() or 1) + 2
    with ThreadPoolExecutor(threads) as pool:
        for index, found in enumerate(pool.map(read, range(threads * per_thread))):
            for got, want in zip(found, expected[index % len(documents)], strict=True):
                np.testing.assert_array_equal(got, want)
