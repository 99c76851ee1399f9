//! DiffIDs and ChainIDs (OCI image spec, "Layer ChainID"
//! <https://github.com/opencontainers/image-spec/blob/main/config.md#layer-chainid>):
//! a layer's DiffID is the digest of its uncompressed tar; the ChainID of a
//! stack is `ChainID(L0) = DiffID(L0)`,
//! `ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))`.
//! It names an applied stack, so equal stacks share one unpacked layer.

use crate::digest::Digest;

/// The ChainID of `parent` with `diff_id` applied on top.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::sha256(format!("{p} {diff_id}").as_bytes()),
    }
}

/// The ChainIDs of every prefix of a stack of DiffIDs, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_id(out.last(), d);
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_of_one_is_its_diff_id_and_later_ones_hash_the_pair() {
        let a = Digest::sha256(b"a");
        let b = Digest::sha256(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::sha256(format!("{a} {b}").as_bytes()));
        assert_ne!(chain_ids(&[b, a])[1], ids[1], "order matters");
    }
}
