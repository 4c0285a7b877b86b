//! Validation of an edited values document against a chart's `values.schema.json`, as Helm does.

use super::ValuesError;

/// Validates the first YAML document in `doc` against the JSON schema `schema_json`.
///
/// # Errors
/// [`ValuesError::BadSchema`] when the schema does not parse or compile, [`ValuesError::Schema`]
/// naming the first failing path (`image.tag`) and why, [`ValuesError::Verify`] when the document
/// cannot be read as JSON-compatible data.
pub fn validate_schema(doc: &[u8], schema_json: &[u8]) -> Result<(), ValuesError> {
    let schema: serde_json::Value =
        serde_json::from_slice(schema_json).map_err(|e| ValuesError::BadSchema(e.to_string()))?;
    let validator =
        jsonschema::validator_for(&schema).map_err(|e| ValuesError::BadSchema(e.to_string()))?;
    let text = std::str::from_utf8(doc).map_err(|e| ValuesError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let instance: serde_json::Value = match yaml_serde::Deserializer::from_str(text).next() {
        Some(d) => serde::Deserialize::deserialize(d).map_err(|e| {
            ValuesError::Verify(format!("cannot read the values for the schema: {e}"))
        })?,
        None => serde_json::Value::Null,
    };
    // An empty values file is an empty map to Helm.
    let instance = if instance.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        instance
    };
    if let Some(err) = validator.iter_errors(&instance).next() {
        let pointer = err.instance_path().to_string();
        let path = pointer
            .split('/')
            .skip(1)
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .map(|p| {
                if p.contains(['.', ' ', '[']) {
                    format!("\"{p}\"")
                } else {
                    p
                }
            })
            .collect::<Vec<_>>()
            .join(".");
        return Err(ValuesError::Schema {
            path: if path.is_empty() {
                "(root)".into()
            } else {
                path
            },
            message: err.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"object","properties":{"image":{"type":"object",
        "properties":{"tag":{"type":"string","pattern":"^[0-9]+\\.[0-9]+\\.[0-9]+$"}}},
        "replicas":{"type":"integer"}}}"#;

    #[test]
    fn a_valid_document_passes() {
        validate_schema(
            b"image:\n  tag: \"1.2.3\"\nreplicas: 2\n",
            SCHEMA.as_bytes(),
        )
        .unwrap();
    }

    #[test]
    fn the_error_names_the_failing_path() {
        let e = validate_schema(b"image:\n  tag: latest\n", SCHEMA.as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("schema validation failed at `image.tag`: "),
            "{e}"
        );
        let e = validate_schema(b"replicas: two\n", SCHEMA.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("at `replicas`"), "{e}");
        let e = validate_schema(b"a: 1\n", b"{not json").unwrap_err();
        assert!(e.to_string().starts_with("bad schema: "), "{e}");
    }
}
