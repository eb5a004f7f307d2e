//! The engine's operands as a list: [`Operand`], the object-safe side of
//! [`Part`] (everything but its pieces), and the one implementation of the run loop's
//! [`Parts`] over a slice of them. A [`Zip`](super::Zip) of any arity lends its tuple as an
//! array of `&mut dyn Operand`; a [`ZipDyn`](super::ZipDyn) holds a `Vec` of boxed operands.

use std::ops::{DerefMut, Range};

use ndarray::Slice;

use crate::error::Error;

use super::options::Through;
use super::overlap::{Operand as Span, Overlap, Survey, overlap, survey_conflicts};
use super::part::sealed::Part;
use super::run::{Parts, divides_all};

/// A [`Part`] without its pieces (object-safe): what the run loop asks of each operand.
pub(super) trait Operand {
    fn writes(&self) -> bool;
    fn strides(&self) -> Vec<isize>;
    fn elem_size(&self) -> usize;
    fn span(&self) -> Span;
    fn snapshot(&mut self);
    fn mapped_len(&self) -> usize;
    fn cold(&self) -> bool;
    fn read_ahead(&self) -> Option<(u64, usize)>;
    fn grid(&self) -> Option<Vec<usize>>;
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        through: Through,
    );
    fn survey(&mut self) -> Result<Option<Survey>, Error>;
    fn prepare(&mut self) -> Result<(), Error>;
    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error>;
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error>;
    fn after(&mut self) -> Result<(), Error>;
    fn finish(&mut self, completed: bool) -> Result<(), Error>;
}

impl<P: Part> Operand for P {
    fn writes(&self) -> bool {
        P::WRITES
    }
    fn strides(&self) -> Vec<isize> {
        Part::strides(self)
    }
    fn elem_size(&self) -> usize {
        Part::elem_size(self)
    }
    fn span(&self) -> Span {
        Part::span(self)
    }
    fn snapshot(&mut self) {
        Part::snapshot(self);
    }
    fn mapped_len(&self) -> usize {
        Part::mapped_len(self)
    }
    fn cold(&self) -> bool {
        Part::cold(self)
    }
    fn read_ahead(&self) -> Option<(u64, usize)> {
        Part::read_ahead(self)
    }
    fn grid(&self) -> Option<Vec<usize>> {
        Part::grid(self)
    }
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        through: Through,
    ) {
        Part::start(self, lead, bounded, sequential, chunks_in_order, through);
    }
    fn survey(&mut self) -> Result<Option<Survey>, Error> {
        Part::survey(self)
    }
    fn prepare(&mut self) -> Result<(), Error> {
        Part::prepare(self)
    }
    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
        Part::enter(self, region)
    }
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
        Part::before(self, piece)
    }
    fn after(&mut self) -> Result<(), Error> {
        Part::after(self)
    }
    fn finish(&mut self, completed: bool) -> Result<(), Error> {
        Part::finish(self, completed)
    }
}

impl<D, O> Parts for [D]
where
    D: DerefMut<Target = O>,
    O: Operand + ?Sized,
{
    fn check_aliasing(&mut self) -> Result<(), Error> {
        let spans: Vec<Span> = self.iter().map(|p| Operand::span(&**p)).collect();
        let mut same = vec![false; self.len()];
        for (o, out) in spans.iter().enumerate() {
            if !Operand::writes(&*self[o]) {
                continue;
            }
            for (k, other) in spans.iter().enumerate() {
                if k == o {
                    continue;
                }
                if let Overlap::Same(err) = overlap(out, other)? {
                    if Operand::writes(&*self[k]) {
                        // Two outputs over the same bytes: no order of writes is right.
                        return Err(err);
                    }
                    same[k] = true;
                }
            }
        }
        for (p, same) in self.iter_mut().zip(same) {
            if same {
                p.snapshot();
            }
        }
        Ok(())
    }
    fn lead(&mut self) -> (Vec<isize>, usize) {
        let lead = self
            .iter()
            .map(|p| &**p)
            .find(|p| Operand::writes(*p))
            .or(self.first().map(|p| &**p));
        lead.map_or((Vec::new(), 1), |p| {
            (Operand::strides(p), Operand::elem_size(p))
        })
    }
    fn mapped_len(&mut self) -> usize {
        self.iter().map(|p| Operand::mapped_len(&**p)).sum()
    }
    fn writes(&mut self) -> bool {
        self.iter().any(|p| Operand::writes(&**p))
    }
    fn cold(&mut self) -> bool {
        // An output the kernel reads (in place, or written through its map: read ahead
        // more than nothing) is read from the disk as an input is.
        self.iter().any(|p| {
            Operand::cold(&**p)
                && (!Operand::writes(&**p)
                    || Operand::read_ahead(&**p).is_some_and(|(ahead, _)| ahead > 0))
        })
    }
    fn output_cold(&mut self) -> bool {
        self.iter()
            .any(|p| Operand::writes(&**p) && Operand::cold(&**p))
    }
    fn read_ahead(&mut self) -> (usize, u64) {
        self.iter()
            .filter_map(|p| Operand::read_ahead(&**p))
            .fold((0, 0), |(size, ahead), (a, s)| {
                (size + s, ahead.saturating_add(a))
            })
    }
    fn grids(&mut self) -> Vec<Vec<usize>> {
        self.iter().filter_map(|p| Operand::grid(&**p)).collect()
    }
    fn survey(&mut self) -> Result<(), Error> {
        let surveys = self
            .iter_mut()
            .map(|p| p.survey())
            .collect::<Result<Vec<_>, _>>()?;
        if surveys.iter().all(Option::is_none) {
            return Ok(());
        }
        let spans: Vec<Span> = self.iter().map(|p| Operand::span(&**p)).collect();
        let writes: Vec<bool> = self.iter().map(|p| Operand::writes(&**p)).collect();
        survey_conflicts(&spans, &writes, &surveys)?;
        self.iter_mut().try_for_each(|p| p.prepare())
    }
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        grids: &[Vec<usize>],
        through: Through,
    ) {
        for p in self.iter_mut() {
            let own = chunks_in_order || p.grid().is_some_and(|g| divides_all(&g, grids));
            p.start(lead, bounded, sequential, own, through);
        }
    }
    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
        self.iter_mut().try_for_each(|p| p.enter(region))
    }
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
        self.iter_mut().try_for_each(|p| p.before(piece))
    }
    fn after(&mut self) -> Result<(), Error> {
        self.iter_mut().try_for_each(|p| p.after())
    }
    fn finish(&mut self, completed: bool) -> Result<(), Error> {
        // Every operand finishes (its write-back), whatever the others say; the first
        // error is the one reported.
        let mut result = Ok(());
        for p in self.iter_mut() {
            let r = p.finish(completed);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}
