//! Where operands lie in memory and how they overlap: the alias check of mapped operands
//! (and of Zarr chunk files) against each other, before anything is written.

use ndarray::ArrayViewD;

use crate::error::Error;

/// Where an operand's elements lie in memory, and how.
/// (Public in name only: the module is private; the Zip's sealed parts return it.)
pub struct Operand {
    /// The memory bytes it spans, `None` when empty.
    pub(super) span: Option<(usize, usize)>,
    pub(super) shape: Vec<usize>,
    pub(super) strides: Vec<isize>,
    pub(super) size: usize,
    /// An input broadcast to the shape: it is read at many positions, so it is never the
    /// in-place case.
    pub(super) broadcast: bool,
}

/// The chunk files of a Zarr operand, for the check before a stream starts.
#[cfg_attr(not(feature = "zarr"), allow(dead_code))] // made by Zarr operands only
pub struct Survey {
    /// Each chunk there is: its file's identity and where it starts in it, its index and
    /// its path (a shard holds many chunks).
    pub(super) files:
        std::collections::HashMap<(crate::map::FileId, u64), (Vec<usize>, std::path::PathBuf)>,
    /// The files, whatever the offsets.
    pub(super) ids: std::collections::HashMap<crate::map::FileId, std::path::PathBuf>,
    /// Shape, chunk shape and chunk order: two handles of one array agree on them.
    pub(super) layout: (Vec<usize>, Vec<usize>, bool),
    pub(super) chunk_bytes: u64,
}

impl Operand {
    /// An operand with no mapped bytes yet (a Zarr array before its first chunk).
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
    pub(super) fn apart() -> Operand {
        Operand {
            span: None,
            shape: Vec::new(),
            strides: Vec::new(),
            size: 0,
            broadcast: false,
        }
    }

    pub(super) fn of<T>(v: &ArrayViewD<'_, T>) -> Operand {
        let size = std::mem::size_of::<T>();
        let span = (!v.is_empty() && size > 0).then(|| {
            let (mut lo, mut hi) = (0isize, 0isize);
            for (&d, &s) in v.shape().iter().zip(v.strides()) {
                let reach = (d as isize - 1) * s;
                if reach < 0 {
                    lo += reach;
                } else {
                    hi += reach;
                }
            }
            let base = v.as_ptr() as isize;
            let size = size as isize;
            (
                (base + lo * size) as usize,
                (base + (hi + 1) * size) as usize,
            )
        });
        Operand {
            span,
            shape: v.shape().to_vec(),
            strides: v.strides().to_vec(),
            size,
            broadcast: false,
        }
    }
}

/// How an output's file bytes relate to another operand's.
pub(super) enum Overlap {
    /// No shared bytes (or not both mapped, or the output is copy-on-write).
    Apart,
    /// The same bytes in the same layout: the in-place case. Carries the error to report
    /// where that is not allowed (two outputs).
    Same(Error),
}

/// How an output's file bytes relate to another operand's; `Err(Aliased)` for an
/// overlap other than [`Overlap::Same`].
pub(super) fn overlap(out: &Operand, other: &Operand) -> Result<Overlap, Error> {
    use crate::map::registry::locate;
    let Some(o) = out.span.and_then(|(lo, hi)| locate(lo, hi)) else {
        return Ok(Overlap::Apart);
    };
    if o.private {
        return Ok(Overlap::Apart); // copy-on-write: its writes never reach the file
    }
    let Some(i) = other.span.and_then(|(lo, hi)| locate(lo, hi)) else {
        return Ok(Overlap::Apart);
    };
    let overlaps = i.id == o.id && i.bytes.start < o.bytes.end && o.bytes.start < i.bytes.end;
    if !overlaps {
        return Ok(Overlap::Apart);
    }
    // The same layout: the same element at every byte. Strides of axes of length 1 (or
    // 0) place nothing, so they are not compared.
    let same = !other.broadcast
        && i.bytes == o.bytes
        && other.size == out.size
        && other.shape == out.shape
        && (0..out.shape.len()).all(|k| out.shape[k] <= 1 || other.strides[k] == out.strides[k]);
    let err = Error::Aliased {
        path: Some(o.path),
        output: o.bytes,
        input: i.bytes,
    };
    if same {
        Ok(Overlap::Same(err))
    } else {
        Err(err)
    }
}

/// The check of chunked operands (Zarr arrays, each with a [`Survey`]) before a stream
/// starts, so that an overlap is refused before
/// anything is written (the check per region, once chunks are mapped, comes too late for
/// that): an output's chunk file may be another operand only as the same chunk of another
/// handle of the same array, read (the in-place case); a chunk file that is also a mapped
/// view, another output, or another chunk is [`Error::Aliased`].
pub(super) fn survey_conflicts(
    spans: &[Operand],
    writes: &[bool],
    surveys: &[Option<Survey>],
) -> Result<(), Error> {
    use crate::map::registry::locate;
    let refuse = |path: &std::path::Path, bytes: u64| Error::Aliased {
        path: Some(path.to_path_buf()),
        output: 0..bytes,
        input: 0..bytes,
    };
    let view_file = |k: usize| spans[k].span.and_then(|(lo, hi)| locate(lo, hi));
    for o in (0..spans.len()).filter(|&o| writes[o]) {
        for k in (0..spans.len()).filter(|&k| k != o) {
            match (&surveys[o], &surveys[k]) {
                (Some(so), Some(sk)) => {
                    for (id, (index, path)) in &sk.files {
                        if let Some((at, _)) = so.files.get(id)
                            && (writes[k] || at != index || so.layout != sk.layout)
                        {
                            return Err(refuse(path, so.chunk_bytes));
                        }
                    }
                }
                (Some(s), None) | (None, Some(s)) => {
                    let view = if surveys[o].is_some() { k } else { o };
                    if let Some(v) = view_file(view)
                        && let Some(path) = s.ids.get(&v.id)
                    {
                        return Err(Error::Aliased {
                            path: Some(path.clone()),
                            output: 0..s.chunk_bytes,
                            input: v.bytes,
                        });
                    }
                }
                (None, None) => {}
            }
        }
    }
    Ok(())
}
