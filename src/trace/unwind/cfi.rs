//! Reading DWARF call-frame information in place: `.eh_frame_hdr`'s search table, CIEs, FDEs
//! and the CFA instructions up to one address, into the `Row` the walker needs (`mod.rs`).
//!
//! Invariants:
//! - A `Cursor` reads only inside the bytes it was made for, which its maker vouches for (a
//!   loaded object's CFI, bounded by a record's own length); a read past them is `None`.
//! - Every malformed or unfamiliar record gives `None` or `Err(())`, never a guess: the walker
//!   then leaves the stack to the system unwinder.

use super::{RBP, Row, Saved};

/// A bounded reader over loaded CFI bytes.
pub(super) struct Cursor {
    at: usize,
    end: usize,
}

impl Cursor {
    /// # Safety
    /// `[at, end)` is readable (part of a loaded object's CFI).
    pub(super) unsafe fn new(at: usize, end: usize) -> Cursor {
        Cursor { at, end }
    }

    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        if self.end.checked_sub(self.at)? < N {
            return None;
        }
        let mut b = [0u8; N];
        // SAFETY: `[at, at + N)` is inside `[at, end)`, readable by `new`'s contract.
        unsafe { core::ptr::copy_nonoverlapping(self.at as *const u8, b.as_mut_ptr(), N) };
        self.at += N;
        Some(b)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        Some(self.bytes::<1>()?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.bytes()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes()?))
    }

    /// A LEB128 number's low 64 bits, how many bits it has, and its last byte's sign bit.
    fn leb(&mut self) -> Option<(u64, u32, bool)> {
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let b = self.u8()?;
            if shift < 64 {
                v |= u64::from(b & 0x7f) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                return Some((v, shift, b & 0x40 != 0));
            }
        }
    }

    pub(super) fn uleb(&mut self) -> Option<u64> {
        Some(self.leb()?.0)
    }

    pub(super) fn sleb(&mut self) -> Option<i64> {
        let (v, bits, negative) = self.leb()?;
        let extend = if negative && bits < 64 {
            !0u64 << bits
        } else {
            0
        };
        Some((v | extend) as i64)
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let n = usize::try_from(n).ok()?;
        if self.end.checked_sub(self.at)? < n {
            return None;
        }
        self.at += n;
        Some(())
    }

    /// The stored value of a pointer in `DW_EH_PE` encoding `enc` (its format: the low four
    /// bits), before any base is added; `None` for a format not used in `.eh_frame`.
    fn raw_pointer(&mut self, enc: u8) -> Option<u64> {
        Some(match enc & 0x0f {
            0x00 | 0x04 | 0x0c => self.u64()?,
            0x01 => self.uleb()?,
            0x02 => u64::from(self.u16()?),
            0x03 => u64::from(self.u32()?),
            0x09 => self.sleb()? as u64,
            0x0a => self.u16()? as i16 as i64 as u64,
            0x0b => self.u32()? as i32 as i64 as u64,
            _ => return None,
        })
    }

    /// A pointer in `DW_EH_PE` encoding `enc` (`datarel` relative to `data`); `None` for an
    /// encoding not used in `.eh_frame` on this target (or `omit`).
    fn pointer(&mut self, enc: u8, data: usize) -> Option<usize> {
        if enc == 0xff {
            return None;
        }
        let here = self.at;
        let raw = self.raw_pointer(enc)?;
        let base = match enc & 0x70 {
            0x00 => 0,
            0x10 => here as u64,
            0x30 => data as u64,
            _ => return None,
        };
        if enc & 0x80 != 0 {
            return None; // indirect: not in the CFI of code (only personality pointers)
        }
        Some(base.wrapping_add(raw) as usize)
    }
}

/// What a CIE says about its FDEs.
struct Cie {
    code_align: u64,
    data_align: i64,
    ra_reg: u64,
    fde_enc: u8,
    has_aug_data: bool,
    /// The initial instructions.
    init: (usize, usize),
}

/// Parse the CIE at `at`.
///
/// # Safety
/// `at` is a CIE inside a loaded object's `.eh_frame`.
unsafe fn parse_cie(at: usize) -> Option<Cie> {
    // SAFETY: a CIE starts with its 4-byte length (`at` is one, by the contract).
    let mut c = unsafe { Cursor::new(at, at + 4) };
    let len = c.u32()?;
    if len == 0 || len == 0xffff_ffff {
        return None; // a terminator, or 64-bit DWARF
    }
    // SAFETY: the record's `len` bytes follow its length field.
    let mut c = unsafe { Cursor::new(at + 4, at + 4 + len as usize) };
    if c.u32()? != 0 {
        return None; // not a CIE
    }
    let version = c.u8()?;
    if version != 1 && version != 3 {
        return None;
    }
    let mut aug = [0u8; 8];
    let mut n = 0;
    loop {
        let b = c.u8()?;
        if b == 0 {
            break;
        }
        if n == aug.len() {
            return None;
        }
        aug[n] = b;
        n += 1;
    }
    let aug = &aug[..n];
    if !aug.is_empty() && aug[0] != b'z' {
        return None; // "eh" and other pre-'z' augmentations
    }
    let code_align = c.uleb()?;
    let data_align = c.sleb()?;
    let ra_reg = if version == 1 {
        u64::from(c.u8()?)
    } else {
        c.uleb()?
    };
    let mut fde_enc = 0u8; // absptr
    let has_aug_data = aug.first() == Some(&b'z');
    if has_aug_data {
        let aug_len = c.uleb()?;
        let data_end = c.at.checked_add(usize::try_from(aug_len).ok()?)?;
        for &a in &aug[1..] {
            match a {
                b'R' => fde_enc = c.u8()?,
                b'L' => {
                    c.u8()?;
                }
                b'P' => {
                    let enc = c.u8()?;
                    // Skip the personality pointer by its size (it may be indirect).
                    c.raw_pointer(enc)?;
                }
                // A signal frame: its CFI describes a kernel frame the walker does not model.
                b'S' => return None,
                // Other letters (e.g. 'B', 'G') say nothing about unwinding on this target;
                // their data ends at `data_end`.
                _ => break,
            }
        }
        if data_end > c.end {
            return None;
        }
        c.at = data_end;
    }
    Some(Cie {
        code_align,
        data_align,
        ra_reg,
        fde_enc,
        has_aug_data,
        init: (c.at, c.end),
    })
}

/// Most `remember_state`s the interpreter keeps.
const STATE_DEPTH: usize = 8;

/// Run CFA instructions `[start, end)` from `row`, up to address `target` (`loc` is the
/// address the instructions start at); `init` is the row after the CIE (for `restore`).
/// `None` for an instruction this interpreter does not know.
fn execute(
    cie: &Cie,
    c: &mut Cursor,
    row: &mut Row,
    init: &Row,
    mut loc: usize,
    target: usize,
) -> Option<()> {
    let mut stack = [Row::new(); STATE_DEPTH];
    let mut depth = 0;
    let set = |row: &mut Row, reg: u64, s: Saved| {
        if reg == RBP {
            row.rbp = s;
        } else if reg == cie.ra_reg {
            row.ra = s;
        }
    };
    let restore = |row: &mut Row, reg: u64| {
        if reg == RBP {
            row.rbp = init.rbp;
        } else if reg == cie.ra_reg {
            row.ra = init.ra;
        }
    };
    let factored = |n: u64| (n as i64).wrapping_mul(cie.data_align);
    while c.at < c.end {
        let op = c.u8()?;
        let advance = match op >> 6 {
            1 => Some(u64::from(op & 0x3f)),
            2 => {
                let off = factored(c.uleb()?);
                set(row, u64::from(op & 0x3f), Saved::At(off));
                None
            }
            3 => {
                restore(row, u64::from(op & 0x3f));
                None
            }
            _ => match op {
                0x00 => None,
                0x01 => {
                    let to = c.pointer(cie.fde_enc, 0)?;
                    if to > target {
                        return Some(());
                    }
                    loc = to;
                    None
                }
                0x02 => Some(u64::from(c.u8()?)),
                0x03 => Some(u64::from(c.u16()?)),
                0x04 => Some(u64::from(c.u32()?)),
                0x05 => {
                    let reg = c.uleb()?;
                    let off = factored(c.uleb()?);
                    set(row, reg, Saved::At(off));
                    None
                }
                0x06 => {
                    restore(row, c.uleb()?);
                    None
                }
                0x07 => {
                    set(row, c.uleb()?, Saved::Undefined);
                    None
                }
                0x08 => {
                    set(row, c.uleb()?, Saved::Same);
                    None
                }
                // register, val_offset: a copy or a computed value, not followed.
                0x09 | 0x14 => {
                    let reg = c.uleb()?;
                    c.uleb()?;
                    set(row, reg, Saved::Other);
                    None
                }
                0x0a => {
                    if depth == STATE_DEPTH {
                        return None;
                    }
                    stack[depth] = *row;
                    depth += 1;
                    None
                }
                0x0b => {
                    depth = depth.checked_sub(1)?;
                    // The whole row, CFA included: compilers bracket an epilogue's CFA changes
                    // with remember/restore and rely on it (as GCC's and LLVM's unwinders do).
                    *row = stack[depth];
                    None
                }
                0x0c => {
                    row.cfa_reg = Some(c.uleb()?);
                    row.cfa_off = c.uleb()? as i64;
                    None
                }
                0x0d => {
                    row.cfa_reg = Some(c.uleb()?);
                    None
                }
                0x0e => {
                    row.cfa_off = c.uleb()? as i64;
                    None
                }
                0x0f => {
                    let len = c.uleb()?;
                    c.skip(len)?;
                    row.cfa_reg = None;
                    None
                }
                0x10 | 0x16 => {
                    let reg = c.uleb()?;
                    let len = c.uleb()?;
                    c.skip(len)?;
                    set(row, reg, Saved::Other);
                    None
                }
                0x11 => {
                    let reg = c.uleb()?;
                    let off = c.sleb()?.wrapping_mul(cie.data_align);
                    set(row, reg, Saved::At(off));
                    None
                }
                0x12 => {
                    row.cfa_reg = Some(c.uleb()?);
                    row.cfa_off = c.sleb()?.wrapping_mul(cie.data_align);
                    None
                }
                0x13 => {
                    row.cfa_off = c.sleb()?.wrapping_mul(cie.data_align);
                    None
                }
                0x15 => {
                    let reg = c.uleb()?;
                    c.sleb()?;
                    set(row, reg, Saved::Other);
                    None
                }
                0x2e => {
                    c.uleb()?; // GNU_args_size: no effect on the rows
                    None
                }
                0x2f => {
                    let reg = c.uleb()?;
                    let off = factored(c.uleb()?).wrapping_neg();
                    set(row, reg, Saved::At(off));
                    None
                }
                _ => return None,
            },
        };
        if let Some(delta) = advance {
            let to = loc.checked_add(usize::try_from(delta.checked_mul(cie.code_align)?).ok()?)?;
            if to > target {
                return Some(());
            }
            loc = to;
        }
    }
    Some(())
}

/// What the CFI says about `pc`, found from the module's `.eh_frame_hdr` at `hdr`: `Ok(None)`
/// when no FDE covers `pc`, `Err(())` when the CFI is beyond this walker.
///
/// # Safety
/// `hdr` is the loaded `.eh_frame_hdr` of the object that contains `pc`.
pub(super) unsafe fn row_at(hdr: usize, pc: usize) -> Result<Option<Row>, ()> {
    // SAFETY: the header's 4 bytes and the two encoded words after them are part of it; the
    // table that follows has `count` entries of 8 bytes (checked encoding 0x3b).
    let mut c = unsafe { Cursor::new(hdr, hdr + 4 + 16) };
    let head = c.bytes::<4>().ok_or(())?;
    let [version, frame_enc, count_enc, table_enc] = head;
    if version != 1 || table_enc != 0x3b {
        return Err(());
    }
    c.pointer(frame_enc, hdr).ok_or(())?;
    let count = c.pointer(count_enc, hdr).ok_or(())?;
    let table = c.at;
    // Binary search: the last entry whose start is <= pc.
    let entry = |i: usize| -> (usize, usize) {
        // SAFETY: i < count: entry i is 8 bytes of the table.
        let mut e = unsafe { Cursor::new(table + 8 * i, table + 8 * i + 8) };
        let start = hdr.wrapping_add(e.u32().unwrap_or(0) as i32 as isize as usize);
        let fde = hdr.wrapping_add(e.u32().unwrap_or(0) as i32 as isize as usize);
        (start, fde)
    };
    let (mut lo, mut hi) = (0usize, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if entry(mid).0 <= pc {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        return Ok(None);
    }
    let (_, fde) = entry(lo - 1);
    // SAFETY: the table points at an FDE of this object's `.eh_frame`.
    unsafe { fde_row(fde, pc) }
}

/// The row of the FDE at `fde` at `pc` (see `row_at`).
///
/// # Safety
/// `fde` is an FDE of a loaded `.eh_frame`.
unsafe fn fde_row(fde: usize, pc: usize) -> Result<Option<Row>, ()> {
    // SAFETY: an FDE starts with its 4-byte length.
    let mut c = unsafe { Cursor::new(fde, fde + 4) };
    let len = c.u32().ok_or(())?;
    if len == 0 || len == 0xffff_ffff {
        return Err(());
    }
    // SAFETY: the record's `len` bytes follow its length field.
    let mut c = unsafe { Cursor::new(fde + 4, fde + 4 + len as usize) };
    let cie_off = c.u32().ok_or(())? as usize;
    if cie_off == 0 {
        return Err(()); // a CIE, not an FDE
    }
    // SAFETY: an FDE's CIE pointer is the offset back from the pointer's own position.
    let cie = unsafe { parse_cie((fde + 4).wrapping_sub(cie_off)) }.ok_or(())?;
    if cie.fde_enc & 0x70 == 0x30 {
        return Err(()); // data-relative addresses of code: not in `.eh_frame` on this target
    }
    let start = c.pointer(cie.fde_enc, 0).ok_or(())?;
    let range = c.pointer(cie.fde_enc & 0x0f, 0).ok_or(())?;
    if pc < start || pc - start >= range {
        return Ok(None);
    }
    if cie.has_aug_data {
        let n = c.uleb().ok_or(())?;
        c.skip(n).ok_or(())?;
    }
    let mut row = Row::new();
    // SAFETY: the CIE's instructions lie inside the CIE record (`parse_cie`'s bounds).
    let mut ci = unsafe { Cursor::new(cie.init.0, cie.init.1) };
    execute(&cie, &mut ci, &mut row, &Row::new(), start, usize::MAX).ok_or(())?;
    let init = row;
    execute(&cie, &mut c, &mut row, &init, start, pc).ok_or(())?;
    Ok(Some(row))
}
