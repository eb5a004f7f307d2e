//! The zip structure of an `.npz` archive, read and checked as Python's zipfile reads it:
//! local and central headers, the end records (zip64 too), names as numpy decodes them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// The zip signatures of a local header and of a central directory entry.
pub(super) const LOCAL_SIG: [u8; 4] = *b"PK\x03\x04";
pub(super) const CENTRAL_SIG: [u8; 4] = *b"PK\x01\x02";
/// The fixed parts of a local header and of a central directory entry.
pub(super) const LOCAL_LEN: u64 = 30;
pub(super) const CENTRAL_LEN: usize = 46;
/// The general purpose flag saying the entry's name is UTF-8.
pub(super) const UTF8_FLAG: u16 = 0x800;

pub(super) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Reads `buf.len()` bytes at `offset`: `Ok(false)` when the file ends first.
pub(super) fn read_at(mut f: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<bool> {
    f.seek(SeekFrom::Start(offset))?;
    match f.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// A zip header's version needed to extract, flags and raw entry name, and where what
/// follows it starts.
pub(super) struct Header {
    pub(super) version: u16,
    pub(super) flags: u16,
    pub(super) name: Vec<u8>,
    /// The extra field (tagged blocks).
    pub(super) extra: Vec<u8>,
    pub(super) end: u64,
}

/// The header with signature `sig` and `fixed` bytes of fixed fields at `offset` in `f`
/// (of `len` bytes), whose name length is at `name_at` and whose extra lengths follow it;
/// `None` when there is none there (a wrong signature, or the file ends before it does:
/// an offset far past the end is not sought, which fails on some filesystems).
pub(super) fn read_header(
    (f, len): (&File, u64),
    offset: u64,
    sig: [u8; 4],
    fixed: usize,
    name_at: usize,
    flags_at: usize,
    extras: usize,
) -> std::io::Result<Option<Header>> {
    let mut h = [0u8; CENTRAL_LEN];
    let h = &mut h[..fixed];
    let Some(name_start) = offset.checked_add(fixed as u64).filter(|&e| e <= len) else {
        return Ok(None);
    };
    if !read_at(f, offset, h)? || h[..4] != sig {
        return Ok(None);
    }
    let mut name = vec![0u8; usize::from(u16_at(h, name_at))];
    if !read_at(f, name_start, &mut name)? {
        return Ok(None);
    }
    let rest: u64 = (0..extras)
        .map(|i| u64::from(u16_at(h, name_at + 2 + 2 * i)))
        .sum();
    let mut extra = vec![0u8; usize::from(u16_at(h, name_at + 2))];
    if !read_at(f, name_start + name.len() as u64, &mut extra)? {
        return Ok(None);
    }
    Ok(Some(Header {
        // In both headers the version needed to extract comes just before the flags; as
        // Python's zipfile does, only its low byte counts (writers put the host system in
        // the high byte, as in "version made by").
        version: u16::from(h[flags_at - 2]),
        flags: u16_at(h, flags_at),
        end: name_start + name.len() as u64 + rest,
        name,
        extra,
    }))
}

/// The local header at `offset` (its end is where the member's data starts).
pub(super) fn local_header(f: (&File, u64), offset: u64) -> std::io::Result<Option<Header>> {
    read_header(f, offset, LOCAL_SIG, LOCAL_LEN as usize, 26, 6, 1)
}

/// The central directory entry at `offset` (its end is where the next one starts).
pub(super) fn central_header(f: (&File, u64), offset: u64) -> std::io::Result<Option<Header>> {
    read_header(f, offset, CENTRAL_SIG, CENTRAL_LEN, 28, 8, 2)
}

/// The signatures of the end-of-directory record, of the zip64 one and of its locator.
pub(super) const END_SIG: [u8; 4] = *b"PK\x05\x06";
pub(super) const END64_SIG: [u8; 4] = *b"PK\x06\x06";
pub(super) const LOCATOR64_SIG: [u8; 4] = *b"PK\x06\x07";
/// Their lengths (the zip64 record's without "extensible data", as Python reads it).
pub(super) const END_LEN: usize = 22;
pub(super) const END64_LEN: usize = 56;
pub(super) const LOCATOR64_LEN: usize = 20;
/// The longest archive comment, which the end record may be followed by.
pub(super) const MAX_COMMENT: u64 = 1 << 16;
/// The highest version needed to extract that Python's zipfile reads (6.3).
pub(super) const MAX_VERSION: u16 = 63;
/// The general purpose flags of an entry of compressed patched data and of a strongly
/// encrypted one, which Python's zipfile refuses to read.
pub(super) const PATCHED_FLAG: u16 = 0x20;
pub(super) const STRONG_FLAG: u16 = 0x40;

/// What Python's zipfile refuses in an entry's extra field, or the zip crate and it would
/// read differently: a block longer than what is left of the field ("Corrupt extra
/// field"), and more than one zip64 block (Python reads the first, the zip crate the
/// last: another member's bytes).
pub(super) fn extra_problem(extra: &[u8]) -> Option<String> {
    let mut at = 0;
    let mut zip64 = 0;
    while extra.len() - at >= 4 {
        let (tag, len) = (u16_at(extra, at), usize::from(u16_at(extra, at + 2)));
        if len + 4 > extra.len() - at {
            return Some(format!(
                "its extra field is corrupt: block {tag:#06x} claims {len} bytes, {} are left",
                extra.len() - at - 4
            ));
        }
        if tag == 1 {
            zip64 += 1;
            if zip64 > 1 {
                return Some(
                    "its extra field holds two zip64 blocks (readers disagree on which one \
                     gives the member's offset and sizes)"
                        .into(),
                );
            }
        }
        at += 4 + len;
    }
    None
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(std::array::from_fn(|i| b[at + i]))
}

/// What an end-of-directory record says of the directory.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counts {
    /// Its entries on this disk and in all.
    pub(super) this_disk: u64,
    pub(super) total: u64,
    /// Its size and where it starts, from the archive's start.
    pub(super) size: u64,
    pub(super) offset: u64,
}

/// The end-of-directory record as numpy (Python's zipfile) finds it, with the zip64 one
/// when a locator precedes it.
pub(super) struct EndRecord {
    /// Where the (classic) record starts.
    pub(super) at: u64,
    pub(super) classic: Counts,
    /// Where the zip64 record starts, and what it says: numpy's zipfile then takes it over
    /// the classic record whatever that says.
    pub(super) zip64: Option<(u64, Counts)>,
}

/// "1 entry", "2 entries".
pub(super) fn entries_text(n: u64) -> String {
    format!("{n} entr{}", if n == 1 { "y" } else { "ies" })
}

/// Finds the end-of-directory record as Python's zipfile does (`_EndRecData`): the file's
/// last 22 bytes if they are one with no comment, else the last signature in the file's
/// last 64 KiB and 22 bytes; then the zip64 record, if its locator lies just before. The
/// inner error says why there is none as numpy reads the file.
pub(super) fn end_record((f, len): (&File, u64)) -> std::io::Result<Result<EndRecord, String>> {
    let mut r = [0u8; END_LEN];
    let Some(last) = len.checked_sub(END_LEN as u64) else {
        return Ok(Err("the file is too short for a zip end record".into()));
    };
    if !read_at(f, last, &mut r)? {
        return Ok(Err("the file ended while it was read".into()));
    }
    let at = if r[..4] == END_SIG && r[20..] == [0, 0] {
        last
    } else {
        let from = len.saturating_sub(MAX_COMMENT + END_LEN as u64);
        let mut tail = vec![0u8; (len - from) as usize];
        if !read_at(f, from, &mut tail)? {
            return Ok(Err("the file ended while it was read".into()));
        }
        let found = tail.windows(4).rposition(|w| w == END_SIG);
        match found {
            Some(i) if tail.len() - i >= END_LEN => {
                r.copy_from_slice(&tail[i..i + END_LEN]);
                from + i as u64
            }
            _ => {
                return Ok(Err(
                    "numpy's zipfile finds no end-of-directory record where it looks for one \
                     (at the end, or followed by a comment)"
                        .into(),
                ));
            }
        }
    };
    let classic = Counts {
        this_disk: u16_at(&r, 8).into(),
        total: u16_at(&r, 10).into(),
        size: u32_at(&r, 12).into(),
        offset: u32_at(&r, 16).into(),
    };
    let mut record = EndRecord {
        at,
        classic,
        zip64: None,
    };
    let mut locator = [0u8; LOCATOR64_LEN];
    let Some(locator_at) = at.checked_sub(LOCATOR64_LEN as u64) else {
        return Ok(Ok(record));
    };
    if !read_at(f, locator_at, &mut locator)? || locator[..4] != LOCATOR64_SIG {
        return Ok(Ok(record));
    }
    if u32_at(&locator, 4) != 0 || u32_at(&locator, 16) > 1 {
        return Ok(Err("the archive spans several disks".into()));
    }
    let mut z = [0u8; END64_LEN];
    let Some(z_at) = locator_at.checked_sub(END64_LEN as u64) else {
        return Ok(Ok(record));
    };
    if read_at(f, z_at, &mut z)? && z[..4] == END64_SIG {
        let counts = Counts {
            this_disk: u64_at(&z, 24),
            total: u64_at(&z, 32),
            size: u64_at(&z, 40),
            offset: u64_at(&z, 48),
        };
        record.zip64 = Some((z_at, counts));
    }
    Ok(Ok(record))
}

/// Where the zip directory starts, and its entries: where each starts, and its header.
type Directory = (u64, Vec<(u64, Header)>);

/// The zip directory's entries (where each starts, and its header) and where the directory
/// starts, read as numpy's zipfile reads them: from where the end record's size puts the
/// directory's start (the record, or the zip64 one, ending it) until that size is used up.
/// The zip crate reads as many entries as the record counts, from where it finds the first
/// one; numpy's zipfile ignores the count. So the entries must fill the directory exactly,
/// every count must be theirs, and the zip crate must have found the same directory; the
/// inner error says what disagrees.
pub(super) fn directory<R: Read + Seek>(
    archive: (&File, u64),
    zip: &zip::ZipArchive<R>,
) -> std::io::Result<Result<Directory, String>> {
    let end = match end_record(archive)? {
        Ok(end) => end,
        Err(why) => return Ok(Err(why)),
    };
    let (dir_end, used, record) = match end.zip64 {
        Some((z_at, counts)) => (z_at, counts, "zip64 end record"),
        None => (end.at, end.classic, "end record"),
    };
    let Some(dir_start) = dir_end.checked_sub(used.size) else {
        return Ok(Err(format!(
            "the {record} gives the zip directory {} bytes, more than the {dir_end} before it",
            used.size
        )));
    };
    let mut entries = Vec::new();
    let mut at = dir_start;
    while at < dir_end {
        let Some(h) = central_header(archive, at)? else {
            return Ok(Err(format!(
                "the {record} gives the zip directory bytes {dir_start}..{dir_end}, but there \
                 is no directory entry at byte {at}"
            )));
        };
        let next = h.end;
        entries.push((at, h));
        at = next;
    }
    if at != dir_end {
        return Ok(Err(format!(
            "the {record} gives the zip directory bytes {dir_start}..{dir_end}, but its last \
             entry ends at byte {at}"
        )));
    }
    let n = entries.len() as u64;
    // The classic record's fields may be saturated where a zip64 record holds the values.
    let saturated = |v: u64, max: u32| end.zip64.is_some() && v == u64::from(max);
    let classic_saturated = |v| saturated(v, u16::MAX.into());
    let mut said = vec![
        (
            end.classic.total,
            "end record",
            "",
            classic_saturated(end.classic.total),
        ),
        (
            end.classic.this_disk,
            "end record",
            " on this disk",
            classic_saturated(end.classic.this_disk),
        ),
    ];
    if let Some((_, z)) = end.zip64 {
        said.push((z.total, "zip64 end record", "", false));
        said.push((z.this_disk, "zip64 end record", " on this disk", false));
    }
    for (count, record, where_, saturated) in said {
        if count != n && !saturated {
            return Ok(Err(format!(
                "the {record} counts {}{where_}, but the zip directory holds {}",
                entries_text(count),
                entries_text(n)
            )));
        }
    }
    let classic = end.classic;
    if classic.size != used.size && !saturated(classic.size, u32::MAX) {
        return Ok(Err(format!(
            "the end record gives the zip directory {} bytes, the zip64 end record {}",
            classic.size, used.size
        )));
    }
    if classic.offset != used.offset && !saturated(classic.offset, u32::MAX) {
        return Ok(Err(format!(
            "the end record puts the zip directory at byte {} of the archive, the zip64 end \
             record at byte {}",
            classic.offset, used.offset
        )));
    }
    // The zip crate's view, which gives each entry's fields, must be numpy's.
    if dir_start != zip.central_directory_start() {
        return Ok(Err(format!(
            "the zip reader finds the zip directory at byte {}, numpy's zipfile at byte \
             {dir_start} (the {record} gives it {} bytes and ends it at byte {dir_end})",
            zip.central_directory_start(),
            used.size
        )));
    }
    if dir_start.checked_sub(used.offset) != Some(zip.offset()) {
        return Ok(Err(format!(
            "the {record} puts the zip directory at byte {} of the archive, and the zip reader \
             takes the archive to start at byte {}, numpy's zipfile at byte {}",
            used.offset,
            zip.offset(),
            i128::from(dir_start) - i128::from(used.offset)
        )));
    }
    Ok(Ok((dir_start, entries)))
}

/// Code page 437 above ASCII, as Python decodes it.
pub(super) const CP437: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐\
                     └┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// An entry name as Python's zipfile decodes it: UTF-8 when the flags say so (`None` if it
/// is not), else code page 437. The zip crate reads names that are valid UTF-8 as UTF-8
/// whatever the flags, and takes a Unicode Path extra field over the name: numpy does not.
pub(super) fn decode_name(raw: &[u8], flags: u16) -> Option<String> {
    if flags & UTF8_FLAG != 0 {
        return String::from_utf8(raw.to_vec()).ok();
    }
    let high: Vec<char> = CP437.chars().collect();
    Some(
        raw.iter()
            .map(|&b| match b {
                0..=0x7f => char::from(b),
                _ => high.get(usize::from(b - 0x80)).copied().unwrap_or('?'),
            })
            .collect(),
    )
}
