//! Query parameters read as upstream reads them into its options structs.

/// A boolean parameter, as Go's `Convert_Slice_string_To_bool`: absent is
/// false; present, it is true unless it is `0` or `false` (any case) — so
/// `?watch=True`, `?watch=yes` and a bare `?watch` all mean true.
pub fn flag(value: Option<&str>) -> bool {
    value.is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// An optional boolean parameter (`*bool` upstream): `None` when absent.
pub fn optional_flag(value: Option<&str>) -> Option<bool> {
    value.map(|v| flag(Some(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_true_unless_zero_or_false() {
        for v in ["true", "True", "TRUE", "1", "yes", ""] {
            assert!(flag(Some(v)), "{v:?}");
        }
        for v in ["false", "False", "FALSE", "0"] {
            assert!(!flag(Some(v)), "{v:?}");
        }
        assert!(!flag(None));
        assert_eq!(optional_flag(None), None);
        assert_eq!(optional_flag(Some("False")), Some(false));
        assert_eq!(optional_flag(Some("True")), Some(true));
    }
}
