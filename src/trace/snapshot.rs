//! Snapshots and their statistics, as tracemalloc's Python side has them: `statistics` groups
//! the traces by file, line or whole traceback and sorts the groups by size; `compare_to`
//! gives each group's difference from an older snapshot, sorted by the absolute size
//! difference; `Display` prints tracemalloc's lines
//! (`src/cache.rs:42: size=8192 KiB (+8192 KiB), count=1000 (+1000), average=8389 B`: 4 or 5
//! digits, then the next unit, exactly as tracemalloc's `_format_size`).
//!
//! In sampled mode each block counts for its weight (`sample::weigh`): the sizes and counts of
//! statistics are the sums of the weights, rounded, so they estimate the true totals.
//!
//! Invariant: a `Snapshot` is plain data, made once and never changed (filters make new ones).

use std::collections::HashMap;
use std::fmt;

use super::filter::{self, Filter};
use super::frames::{Frame, Traceback};
use super::sample;

/// What statistics group by (tracemalloc's `key_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// The most recent frame's file (`"filename"`; shown as `file:0`, as tracemalloc does).
    Filename,
    /// The most recent frame's file and line (`"lineno"`).
    Lineno,
    /// The whole traceback (`"traceback"`).
    Traceback,
}

impl From<&str> for Key {
    /// `"filename"`, `"lineno"` or `"traceback"`; any other string panics, as tracemalloc
    /// raises `ValueError`.
    fn from(s: &str) -> Key {
        match s {
            "filename" => Key::Filename,
            "lineno" => Key::Lineno,
            "traceback" => Key::Traceback,
            other => panic!("unknown key_type: {other:?} (filename, lineno or traceback)"),
        }
    }
}

/// One traced block: its size and where it was allocated (tracemalloc's `Trace`; named apart
/// from the collector's `Trace` trait).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedBlock {
    /// Bytes requested.
    pub size: usize,
    /// Where it was allocated.
    pub traceback: Traceback,
}

/// The traces held at one moment (tracemalloc's `Snapshot`).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    traces: Vec<TracedBlock>,
    traceback_limit: usize,
    sample_mean: usize,
}

/// The blocks of one group (tracemalloc's `Statistic`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Statistic {
    /// The group: one frame (by file or line) or a whole traceback.
    pub traceback: Traceback,
    /// Total bytes.
    pub size: usize,
    /// Blocks.
    pub count: usize,
}

/// A group's difference between two snapshots (tracemalloc's `StatisticDiff`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatisticDiff {
    /// The group.
    pub traceback: Traceback,
    /// Total bytes in the new snapshot.
    pub size: usize,
    /// New minus old bytes.
    pub size_diff: isize,
    /// Blocks in the new snapshot.
    pub count: usize,
    /// New minus old blocks.
    pub count_diff: isize,
}

impl Snapshot {
    pub(crate) fn new(
        traces: Vec<TracedBlock>,
        traceback_limit: usize,
        sample_mean: usize,
    ) -> Snapshot {
        Snapshot {
            traces,
            traceback_limit,
            sample_mean,
        }
    }

    /// The sampling mean in bytes when the snapshot was taken in sampled mode, `None` for an
    /// exact snapshot.
    pub fn sample_mean(&self) -> Option<usize> {
        (self.sample_mean != 0).then_some(self.sample_mean)
    }

    /// How many blocks of `size` bytes one traced block of that size stands for: 1 in exact
    /// mode, `1 / (1 - exp(-size / mean))` in sampled mode (its estimated bytes are `size`
    /// times that).
    pub fn weight(&self, size: usize) -> f64 {
        1.0 / sample::probability(size, self.sample_mean)
    }

    /// The (estimated, in sampled mode) total of bytes and of blocks in the snapshot.
    pub fn total(&self) -> (usize, usize) {
        let (mut bytes, mut count) = (0.0f64, 0.0f64);
        for t in &self.traces {
            let w = self.weight(t.size);
            bytes += sample::weigh(t.size, self.sample_mean) as f64;
            count += w;
        }
        (bytes.round() as usize, count.round() as usize)
    }

    /// Every traced block, in no particular order (in sampled mode: the sampled blocks, each
    /// standing for [`weight`](Self::weight) blocks).
    pub fn traces(&self) -> &[TracedBlock] {
        &self.traces
    }

    /// The frames kept per traceback when the snapshot was taken (`start`'s `nframes`).
    pub fn traceback_limit(&self) -> usize {
        self.traceback_limit
    }

    /// A new snapshot of the traces that pass `filters` (all of them when it is empty).
    pub fn filter_traces(&self, filters: &[Filter]) -> Snapshot {
        let traces = self
            .traces
            .iter()
            .filter(|t| filter::keep(filters, &t.traceback))
            .cloned()
            .collect();
        Snapshot::new(traces, self.traceback_limit, self.sample_mean)
    }

    /// Bytes and blocks by group (estimated in sampled mode, rounded).
    fn group_by(&self, key: Key, cumulative: bool) -> HashMap<Traceback, (usize, usize)> {
        self.group_by_f64(key, cumulative)
            .into_iter()
            .map(|(k, (size, count))| (k, (size.round() as usize, count.round() as usize)))
            .collect()
    }

    fn group_by_f64(&self, key: Key, cumulative: bool) -> HashMap<Traceback, (f64, f64)> {
        assert!(
            !(cumulative && key == Key::Traceback),
            "cumulative mode cannot be used with key type traceback"
        );
        let mut keys: HashMap<&Traceback, Vec<Traceback>> = HashMap::new();
        let mut stats: HashMap<Traceback, (f64, f64)> = HashMap::new();
        for t in &self.traces {
            let groups = keys.entry(&t.traceback).or_insert_with(|| {
                let one = |f: &Frame| match key {
                    Key::Filename => Traceback::new(vec![f.file_only()]),
                    _ => Traceback::new(vec![f.clone()]),
                };
                match (key, cumulative) {
                    (Key::Traceback, _) => vec![t.traceback.clone()],
                    (_, false) => vec![one(&t.traceback.frames()[0])],
                    (_, true) => t.traceback.frames().iter().map(one).collect(),
                }
            });
            let bytes = sample::weigh(t.size, self.sample_mean) as f64;
            let count = self.weight(t.size);
            for g in groups.iter() {
                let s = stats.entry(g.clone()).or_insert((0.0, 0.0));
                s.0 += bytes;
                s.1 += count;
            }
        }
        stats
    }

    /// The traces grouped by `key` (`"lineno"`, `"filename"`, `"traceback"` or a [`Key`]),
    /// biggest first (by size, then count, then traceback).
    pub fn statistics(&self, key: impl Into<Key>) -> Vec<Statistic> {
        self.statistics_with(key.into(), false)
    }

    /// As `statistics`, counting each block in every frame of its traceback, not only the most
    /// recent (tracemalloc's `cumulative=True`; not with `Key::Traceback`).
    pub fn statistics_cumulative(&self, key: impl Into<Key>) -> Vec<Statistic> {
        self.statistics_with(key.into(), true)
    }

    fn statistics_with(&self, key: Key, cumulative: bool) -> Vec<Statistic> {
        let mut out: Vec<Statistic> = self
            .group_by(key, cumulative)
            .into_iter()
            .map(|(traceback, (size, count))| Statistic {
                traceback,
                size,
                count,
            })
            .collect();
        out.sort_by(|a, b| (b.size, b.count, &b.traceback).cmp(&(a.size, a.count, &a.traceback)));
        out
    }

    /// Each group's difference from `old`, biggest absolute size difference first (then size,
    /// absolute count difference, count, traceback), groups gone since `old` included.
    pub fn compare_to(&self, old: &Snapshot, key: impl Into<Key>) -> Vec<StatisticDiff> {
        let key = key.into();
        let mut old_groups = old.group_by(key, false);
        let mut out = Vec::new();
        for (traceback, (size, count)) in self.group_by(key, false) {
            let (old_size, old_count) = old_groups.remove(&traceback).unwrap_or((0, 0));
            out.push(StatisticDiff {
                traceback,
                size,
                size_diff: size as isize - old_size as isize,
                count,
                count_diff: count as isize - old_count as isize,
            });
        }
        for (traceback, (size, count)) in old_groups {
            out.push(StatisticDiff {
                traceback,
                size: 0,
                size_diff: -(size as isize),
                count: 0,
                count_diff: -(count as isize),
            });
        }
        let order = |d: &StatisticDiff| {
            (
                d.size_diff.unsigned_abs(),
                d.size,
                d.count_diff.unsigned_abs(),
                d.count,
            )
        };
        out.sort_by(|a, b| (order(b), &b.traceback).cmp(&(order(a), &a.traceback)));
        out
    }
}

/// tracemalloc's `_format_size`: `512 B`, `9999 B`, `12.3 KiB`, `8192 KiB`, `64.0 MiB`;
/// with `sign`, a `+` or `-` always.
pub fn format_size(size: f64, sign: bool) -> String {
    let mut size = size;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if size.abs() < 100.0 && unit != "B" {
            return if sign {
                format!("{size:+.1} {unit}")
            } else {
                format!("{size:.1} {unit}")
            };
        }
        if size.abs() < 10.0 * 1024.0 || unit == "TiB" {
            return if sign {
                format!("{size:+.0} {unit}")
            } else {
                format!("{size:.0} {unit}")
            };
        }
        size /= 1024.0;
    }
    unreachable!("the TiB step always returns")
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: size={}, count={}",
            self.traceback,
            format_size(self.size as f64, false),
            self.count
        )?;
        if self.count > 0 {
            let average = self.size as f64 / self.count as f64;
            write!(f, ", average={}", format_size(average, false))?;
        }
        Ok(())
    }
}

impl fmt::Display for StatisticDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: size={} ({}), count={} ({:+})",
            self.traceback,
            format_size(self.size as f64, false),
            format_size(self.size_diff as f64, true),
            self.count,
            self.count_diff
        )?;
        if self.count > 0 {
            let average = self.size as f64 / self.count as f64;
            write!(f, ", average={}", format_size(average, false))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::format_size;

    #[test]
    fn sizes_as_tracemalloc_prints_them() {
        assert_eq!(format_size(0.0, false), "0 B");
        assert_eq!(format_size(512.0, false), "512 B");
        assert_eq!(format_size(10239.0, false), "10239 B");
        assert_eq!(format_size(10240.0, false), "10.0 KiB");
        // tracemalloc keeps 4 or 5 digits before moving up a unit: 8 MiB is "8192 KiB".
        assert_eq!(format_size(8.0 * 1024.0 * 1024.0, false), "8192 KiB");
        assert_eq!(format_size(64.0 * 1024.0 * 1024.0, false), "64.0 MiB");
        assert_eq!(format_size(8396.8, false), "8397 B");
        assert_eq!(format_size(200.0 * 1024.0, false), "200 KiB");
        assert_eq!(format_size(64.0 * 1024.0 * 1024.0, true), "+64.0 MiB");
        assert_eq!(format_size(-4096.0, true), "-4096 B");
        assert_eq!(format_size(0.0, true), "+0 B");
    }
}
