//! Deterministic fuzzing for the unit tests of every parser of outside input (signature header,
//! receipt, config, durations, `--set` paths): many strings, built from an alphabet or by
//! mutating a valid input, each of which must parse or be refused without a panic.

/// A xorshift generator: the same strings on every run, so a failure reproduces.
pub struct Strings {
    state: u64,
}

impl Strings {
    pub fn new(seed: u64) -> Self {
        Self { state: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A string of up to `max_len` characters drawn from `alphabet`.
    pub fn drawn_from(&mut self, alphabet: &[&str], max_len: usize) -> String {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }

    /// `valid` cut short, with a byte changed, or with a fragment of `junk` spliced in.
    pub fn mutation(&mut self, valid: &str, junk: &[&str]) -> String {
        let mut b = valid.as_bytes().to_vec();
        if b.is_empty() {
            return junk[self.below(junk.len())].to_owned();
        }
        match self.below(3) {
            0 => b.truncate(self.below(b.len())),
            1 => {
                let at = self.below(b.len());
                b[at] = (self.next() % 256) as u8;
            }
            _ => {
                let at = self.below(b.len());
                let piece = junk[self.below(junk.len())].as_bytes().to_vec();
                b.splice(at..at, piece);
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    }
}
