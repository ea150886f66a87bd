//! Rewrites a weight-only int8 ONNX graph so its matrix products run on
//! integers: each `MatMul(x, Cast(w_int8) * scale) [+ bias]` becomes one
//! `DynamicQuantizeMatMul(x, w_int8, scale, -, bias)` (an ONNX Runtime
//! contrib operator), which quantises the activations on the fly and uses
//! the CPU's int8 dot-product instructions.
//!
//! Why: the shipped all-MiniLM-L6-v2 int8 stores its weights as int8 but
//! multiplies in fp32 (ONNX Runtime folds `Cast * scale` back into float
//! weights at load), so it costs what the fp32 model does. With the same
//! int8 weights multiplied as integers, embedding is about twice as fast on
//! short and long texts and single queries alike, at a mean cosine of 0.993
//! to the float vectors (BENCHMARKS.md, "Integer matrix products").
//!
//! Only this exact pattern is rewritten; anything else (attention's
//! activation-by-activation products, fp32 graphs) is left alone, so a graph
//! without it comes back unchanged.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::{
    Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, tensor_proto::DataType,
};

use crate::kb::KbError;

/// The contrib operators' domain.
const MS_DOMAIN: &str = "com.microsoft";

/// Part of the model fingerprint when the rewrite is applied, so indexes
/// built from float products are not reused with integer ones.
pub const REWRITE_TAG: &str = "integer-products-v1";

/// The rewritten model and how many products were rewritten (0: unchanged).
pub fn rewrite(onnx: &[u8]) -> Result<(Vec<u8>, usize), KbError> {
    let bad = |e: protobuf::Error| KbError::Model { message: format!("model.onnx: {e}") };
    let mut model = ModelProto::parse_from_bytes(onnx).map_err(bad)?;
    let Some(graph) = model.graph.as_mut() else { return Ok((onnx.to_vec(), 0)) };
    let inits: HashMap<String, usize> =
        graph.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for input in &n.input {
            consumers.entry(input.as_str()).or_default().push(i);
        }
    }
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();

    // Each rewrite: the MatMul's index, its replacement, an Add folded in.
    let mut plans: Vec<(usize, NodeProto, Option<usize>, TensorProto)> = Vec::new();
    for (i, node) in graph.node.iter().enumerate() {
        if node.op_type != "MatMul" || !node.domain.is_empty() || node.input.len() != 2 {
            continue;
        }
        let Some(&mul) = producer.get(node.input[1].as_str()) else { continue };
        let mul = &graph.node[mul];
        if mul.op_type != "Mul" || mul.input.len() != 2 {
            continue;
        }
        // One Mul input is Cast(int8 initializer), the other a float initializer.
        let find = |want_cast: bool| {
            mul.input.iter().find(|name| {
                let cast = producer.get(name.as_str()).map(|&p| &graph.node[p]);
                want_cast == cast.is_some_and(|c| c.op_type == "Cast")
            })
        };
        let (Some(cast_out), Some(scale_name)) = (find(true), find(false)) else { continue };
        let cast = &graph.node[producer[cast_out.as_str()]];
        let Some(weight) = cast.input.first().and_then(|w| inits.get(w)).map(|&w| &graph.initializer[w])
        else {
            continue;
        };
        let Some(scale) = inits.get(scale_name).map(|&s| &graph.initializer[s]) else { continue };
        if weight.data_type != DataType::INT8 as i32
            || weight.dims.len() != 2
            || scale.data_type != DataType::FLOAT as i32
        {
            continue;
        }
        let columns = weight.dims[1];
        let scale_len: i64 = scale.dims.iter().product();
        if scale_len != columns && scale_len != 1 {
            continue;
        }
        // The scale as a vector (per column) or scalar, as the operator wants.
        let mut flat = scale.clone();
        flat.name = format!("{}__per_column", scale.name);
        flat.dims = vec![scale_len];
        // A bias Add that only this product feeds is folded in.
        let out = node.output.first().map(String::as_str).unwrap_or_default();
        let add = match consumers.get(out).map(Vec::as_slice) {
            Some(&[a]) if !outputs.contains(out) => Some(a),
            _ => None,
        }
        .filter(|&a| {
            let add = &graph.node[a];
            add.op_type == "Add"
                && add.input.len() == 2
                && add.input.iter().any(|x| {
                    inits.get(x).is_some_and(|&t| {
                        let t = &graph.initializer[t];
                        t.data_type == DataType::FLOAT as i32 && t.dims.iter().product::<i64>() == columns
                    })
                })
        });
        let (bias, output) = match add {
            Some(a) => {
                let add = &graph.node[a];
                let bias =
                    add.input.iter().find(|x| inits.contains_key(x.as_str())).cloned().unwrap_or_default();
                (bias, add.output.clone())
            }
            None => (String::new(), node.output.clone()),
        };
        let mut inputs = vec![node.input[0].clone(), weight.name.clone(), flat.name.clone(), String::new()];
        if !bias.is_empty() {
            inputs.push(bias);
        }
        let replacement = NodeProto {
            input: inputs,
            output,
            name: format!("{}__integer", node.name),
            op_type: "DynamicQuantizeMatMul".into(),
            domain: MS_DOMAIN.into(),
            ..Default::default()
        };
        plans.push((i, replacement, add, flat));
    }
    if plans.is_empty() {
        return Ok((onnx.to_vec(), 0));
    }
    let count = plans.len();
    let mut replace: HashMap<usize, NodeProto> = HashMap::new();
    let mut folded: HashSet<usize> = HashSet::new();
    let mut new_inits: Vec<TensorProto> = Vec::new();
    for (i, node, add, flat) in plans {
        replace.insert(i, node);
        folded.extend(add);
        if !new_inits.iter().any(|t| t.name == flat.name) {
            new_inits.push(flat);
        }
    }
    let old = std::mem::take(&mut graph.node);
    graph.node = old
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !folded.contains(i))
        .map(|(i, n)| replace.remove(&i).unwrap_or(n))
        .collect();
    graph.initializer.extend(new_inits);
    prune(graph);
    if !model.opset_import.iter().any(|o| o.domain == MS_DOMAIN) {
        model.opset_import.push(OperatorSetIdProto {
            domain: MS_DOMAIN.into(),
            version: 1,
            ..Default::default()
        });
    }
    let bytes = model.write_to_bytes().map_err(bad)?;
    Ok((bytes, count))
}

/// Drops nodes whose outputs nothing reads (the weights' Cast and Mul) and
/// initializers nothing reads, until none is left to drop.
fn prune(graph: &mut onnx_protobuf::GraphProto) {
    loop {
        let read: HashSet<String> = graph
            .node
            .iter()
            .flat_map(|n| n.input.iter().cloned())
            .chain(graph.output.iter().map(|o| o.name.clone()))
            .collect();
        let before = graph.node.len();
        graph.node.retain(|n| n.output.iter().any(|o| read.contains(o)));
        if graph.node.len() == before {
            graph.initializer.retain(|t| read.contains(&t.name));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, dt: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
        TensorProto {
            name: name.into(),
            data_type: dt as i32,
            dims: dims.to_vec(),
            raw_data: raw,
            ..Default::default()
        }
    }

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name: output.into(),
            ..Default::default()
        }
    }

    /// x @ (Cast(w) * s) + b, then a Relu that keeps the Add's output alive.
    fn graph(with_bias: bool) -> Vec<u8> {
        let mut g = onnx_protobuf::GraphProto::default();
        g.initializer.push(tensor("w", DataType::INT8, &[2, 3], vec![1, 2, 3, 4, 5, 6]));
        g.initializer.push(tensor("s", DataType::FLOAT, &[1, 3], vec![0; 12]));
        g.initializer.push(tensor("b", DataType::FLOAT, &[3], vec![0; 12]));
        g.node.push(node("Cast", &["w"], "wf"));
        g.node.push(node("Mul", &["wf", "s"], "wd"));
        g.node.push(node("MatMul", &["x", "wd"], "y"));
        let last = if with_bias {
            g.node.push(node("Add", &["y", "b"], "yb"));
            "yb"
        } else {
            "y"
        };
        g.node.push(node("Relu", &[last], "out"));
        g.output.push(onnx_protobuf::ValueInfoProto { name: "out".into(), ..Default::default() });
        let m = ModelProto { graph: Some(g).into(), ..Default::default() };
        m.write_to_bytes().unwrap()
    }

    #[test]
    fn the_weight_only_pattern_becomes_one_integer_product_with_its_bias() {
        let (bytes, n) = rewrite(&graph(true)).unwrap();
        assert_eq!(n, 1);
        let m = ModelProto::parse_from_bytes(&bytes).unwrap();
        let g = m.graph.as_ref().unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["DynamicQuantizeMatMul", "Relu"]);
        let q = &g.node[0];
        assert_eq!(q.input, ["x", "w", "s__per_column", "", "b"]);
        assert_eq!(q.output, ["yb"]);
        let names: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, HashSet::from(["w", "b", "s__per_column"]));
        let flat = g.initializer.iter().find(|t| t.name == "s__per_column").unwrap();
        assert_eq!(flat.dims, [3]);
        assert!(m.opset_import.iter().any(|o| o.domain == MS_DOMAIN));
    }

    #[test]
    fn without_a_bias_the_product_keeps_its_own_output() {
        let (bytes, n) = rewrite(&graph(false)).unwrap();
        assert_eq!(n, 1);
        let g = ModelProto::parse_from_bytes(&bytes).unwrap().graph.unwrap();
        assert_eq!(g.node[0].output, ["y"]);
        assert_eq!(g.node[0].input.len(), 4);
    }

    #[test]
    fn a_graph_without_the_pattern_comes_back_unchanged_and_garbage_is_an_error() {
        let mut g = onnx_protobuf::GraphProto::default();
        g.node.push(node("MatMul", &["x", "y"], "z"));
        let m = ModelProto { graph: Some(g).into(), ..Default::default() };
        let bytes = m.write_to_bytes().unwrap();
        assert_eq!(rewrite(&bytes).unwrap(), (bytes, 0));
        assert!(rewrite(b"\xff\xff\xff not a model").is_err());
    }
}
