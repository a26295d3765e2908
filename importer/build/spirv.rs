//! A SPIR-V rewrite the build script applies to naga's output.
//!
//! A Vulkan image with a sampler Y'CbCr conversion may only be sampled
//! through a COMBINED_IMAGE_SAMPLER binding whose immutable sampler carries
//! the same conversion. WGSL (and so naga) has separate images and samplers
//! only; [`combine_image_sampler`] turns the image variable at
//! (`set`, binding 0) into a combined image sampler and drops the uses of the
//! sampler at (`set`, binding 1):
//!
//! ```text
//! %ptr = OpTypePointer UniformConstant %image   ->  %ptr2 = OpTypePointer UniformConstant %sampled
//! %tex = OpVariable %ptr UniformConstant        ->  %tex = OpVariable %ptr2 UniformConstant
//! %i = OpLoad %image %tex                        ->  %i = OpLoad %sampled %tex
//! %s = OpLoad %sampler %samp                     ->  (removed)
//! %si = OpSampledImage %sampled %i %s            ->  (removed; its uses read %i)
//! ```
//!
//! The sampler variable stays declared but unused, which Vulkan allows
//! (only statically used bindings must be in the pipeline layout).

use std::collections::HashMap;

const OP_TYPE_SAMPLED_IMAGE: u32 = 27;
const OP_TYPE_POINTER: u32 = 32;
const OP_VARIABLE: u32 = 59;
const OP_LOAD: u32 = 61;
const OP_DECORATE: u32 = 71;
const OP_SAMPLED_IMAGE: u32 = 86;
/// `OpImageSampleImplicitLod` ..= `OpImageSampleProjDrefExplicitLod`.
const OP_IMAGE_SAMPLE: std::ops::RangeInclusive<u32> = 87..=94;
const DECORATION_BINDING: u32 = 33;
const DECORATION_DESCRIPTOR_SET: u32 = 34;
const STORAGE_UNIFORM_CONSTANT: u32 = 0;

fn opcode(inst: &[u32]) -> u32 {
    inst[0] & 0xffff
}

/// The rewrite described in the module doc. Errors name what was not found.
pub fn combine_image_sampler(words: &[u32], set: u32) -> Result<Vec<u32>, String> {
    if words.len() < 5 || words[0] != 0x0723_0203 {
        return Err("not a SPIR-V module".into());
    }
    let mut insts: Vec<Vec<u32>> = Vec::new();
    let mut at = 5;
    while at < words.len() {
        let len = (words[at] >> 16) as usize;
        if len == 0 || at + len > words.len() {
            return Err(format!("malformed instruction at word {at}"));
        }
        insts.push(words[at..at + len].to_vec());
        at += len;
    }
    // (set, binding) of every decorated id.
    let mut slots: HashMap<u32, (Option<u32>, Option<u32>)> = HashMap::new();
    for inst in insts.iter().filter(|i| opcode(i) == OP_DECORATE && i.len() >= 4) {
        let slot = slots.entry(inst[1]).or_default();
        match inst[2] {
            DECORATION_DESCRIPTOR_SET => slot.0 = Some(inst[3]),
            DECORATION_BINDING => slot.1 = Some(inst[3]),
            _ => {}
        }
    }
    let at_binding = |binding: u32| {
        slots
            .iter()
            .find(|(_, s)| **s == (Some(set), Some(binding)))
            .map(|(id, _)| *id)
            .ok_or(format!("no variable at set {set}, binding {binding}"))
    };
    let (tex, samp) = (at_binding(0)?, at_binding(1)?);
    let var_pos = insts
        .iter()
        .position(|i| opcode(i) == OP_VARIABLE && i[2] == tex)
        .ok_or("the image binding is not a variable")?;
    let mut si_pos = insts
        .iter()
        .position(|i| opcode(i) == OP_TYPE_SAMPLED_IMAGE)
        .ok_or("no OpTypeSampledImage: the image is never sampled")?;
    let sampled = insts[si_pos][1];
    // The sampled-image type must be declared before the variable's new pointer type.
    if si_pos > var_pos {
        let si = insts.remove(si_pos);
        insts.insert(var_pos, si);
        si_pos = var_pos;
    }
    let mut bound = words[3];
    let ptr = bound;
    bound += 1;
    insts.insert(
        si_pos + 1,
        vec![(4 << 16) | OP_TYPE_POINTER, ptr, STORAGE_UNIFORM_CONSTANT, sampled],
    );
    let mut image_loads = Vec::new();
    let mut sampler_loads = Vec::new();
    let mut replaced: HashMap<u32, u32> = HashMap::new();
    let mut out: Vec<Vec<u32>> = Vec::with_capacity(insts.len());
    for mut inst in insts {
        match opcode(&inst) {
            OP_VARIABLE if inst[2] == tex => inst[1] = ptr,
            OP_LOAD if inst[3] == tex => {
                inst[1] = sampled;
                image_loads.push(inst[2]);
            }
            OP_LOAD if inst[3] == samp => {
                sampler_loads.push(inst[2]);
                continue;
            }
            OP_SAMPLED_IMAGE if image_loads.contains(&inst[3]) => {
                if !sampler_loads.contains(&inst[4]) {
                    return Err("the image is combined with another sampler".into());
                }
                replaced.insert(inst[2], inst[3]);
                continue;
            }
            op if OP_IMAGE_SAMPLE.contains(&op) => {
                if let Some(&image) = replaced.get(&inst[3]) {
                    inst[3] = image;
                }
            }
            _ => {}
        }
        out.push(inst);
    }
    if replaced.is_empty() {
        return Err("no OpSampledImage of the image binding".into());
    }
    let mut result = words[..5].to_vec();
    result[3] = bound;
    result.extend(out.into_iter().flatten());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-assembled fragment of what naga emits (types, variables,
    /// decorations and the sampling instructions; not a whole module).
    fn module() -> Vec<u32> {
        let i = |op: u32, operands: &[u32]| {
            let mut v = vec![((operands.len() as u32 + 1) << 16) | op];
            v.extend_from_slice(operands);
            v
        };
        let mut w = vec![0x0723_0203, 0x0001_0000, 0, 100, 0];
        for inst in [
            i(OP_DECORATE, &[10, DECORATION_DESCRIPTOR_SET, 0]),
            i(OP_DECORATE, &[10, DECORATION_BINDING, 0]),
            i(OP_DECORATE, &[11, DECORATION_DESCRIPTOR_SET, 0]),
            i(OP_DECORATE, &[11, DECORATION_BINDING, 1]),
            i(25, &[2, 1, 1, 0, 0, 0, 1, 0]), // %2 = OpTypeImage
            i(OP_TYPE_POINTER, &[3, 0, 2]),
            i(OP_VARIABLE, &[3, 10, 0]),
            i(26, &[4]), // %4 = OpTypeSampler
            i(OP_TYPE_POINTER, &[5, 0, 4]),
            i(OP_VARIABLE, &[5, 11, 0]),
            i(OP_TYPE_SAMPLED_IMAGE, &[6, 2]),
            i(OP_LOAD, &[2, 20, 10]),
            i(OP_LOAD, &[4, 21, 11]),
            i(OP_SAMPLED_IMAGE, &[6, 22, 20, 21]),
            i(88, &[7, 23, 22, 30, 2, 31]), // OpImageSampleExplicitLod
        ] {
            w.extend(inst);
        }
        w
    }

    #[test]
    fn the_image_becomes_a_combined_sampler() {
        let out = combine_image_sampler(&module(), 0).unwrap();
        assert_eq!(out[3], 101, "one new id: the pointer to the sampled image");
        let text: Vec<u32> = out[5..].to_vec();
        let has = |inst: &[u32]| text.windows(inst.len()).any(|w| w == inst);
        assert!(has(&[(3 << 16) | OP_TYPE_SAMPLED_IMAGE, 6, 2]));
        assert!(has(&[(4 << 16) | OP_TYPE_POINTER, 100, 0, 6]));
        assert!(has(&[(4 << 16) | OP_VARIABLE, 100, 10, 0]));
        assert!(has(&[(4 << 16) | OP_LOAD, 6, 20, 10]));
        assert!(!has(&[(4 << 16) | OP_LOAD, 4, 21, 11]), "the sampler load is gone");
        assert!(!text.chunks(1).any(|w| w[0] == (5 << 16) | OP_SAMPLED_IMAGE));
        assert!(
            has(&[(7 << 16) | 88, 7, 23, 20, 30, 2, 31]),
            "sampling reads the combined load"
        );
        // The sampled-image type now precedes the variable that points to it.
        let pos = |inst: &[u32]| text.windows(inst.len()).position(|w| w == inst).unwrap();
        assert!(pos(&[(3 << 16) | OP_TYPE_SAMPLED_IMAGE, 6, 2]) < pos(&[(4 << 16) | OP_VARIABLE, 100, 10, 0]));
    }

    #[test]
    fn a_module_without_the_bindings_is_refused() {
        assert!(combine_image_sampler(&module(), 1).unwrap_err().contains("set 1"));
        assert!(combine_image_sampler(&[1, 2, 3], 0).is_err());
    }
}
