//! `${{ name }}` in inline YAML: where a `let` variable's value goes when the step runs.
//!
//! The marker is one that pasted text does not hold: shell writes `$VAR` and `${VAR}`, Kubernetes
//! expands `$(VAR)` in commands, Helm writes `{{ }}`; none of them writes `${{`. Should a manifest
//! need those three characters as they are, `$${{` writes them.

use std::ops::Range;

/// A stretch of inline YAML, as the substitution sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'t> {
    /// Text kept as written; an escaped `$${{` comes out as `${{`.
    Text(&'t str),
    /// `${{ name }}` (spaces inside the braces optional) at `range` of the text.
    Variable { name: &'t str, range: Range<usize> },
    /// `${{` not followed by a variable name and `}}`, at `range`: up to and including the
    /// closing `}}` when the line has one, else just the `${{`.
    Malformed { range: Range<usize> },
}

const OPEN: &str = "${{";
const ESCAPED_OPEN: &str = "$${{";
const CLOSE: &str = "}}";

/// The text cut into what is kept and what is substituted, in order.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut at = 0;
    while let Some(found) = text[at..].find(OPEN) {
        let open = at + found;
        if text[..open].ends_with('$') && text[open - 1..].starts_with(ESCAPED_OPEN) {
            // `$${{`: everything up to the first `$`, then `${{` as written.
            push_text(&mut pieces, &text[at..open - 1]);
            push_text(&mut pieces, OPEN);
            at = open + OPEN.len();
            continue;
        }
        push_text(&mut pieces, &text[at..open]);
        let inside_start = open + OPEN.len();
        let line_end = text[inside_start..].find('\n').map_or(text.len(), |i| inside_start + i);
        let close = text[inside_start..line_end].find(CLOSE).map(|i| inside_start + i);
        match close {
            Some(close) if is_identifier(text[inside_start..close].trim_matches([' ', '\t'])) => {
                let name = text[inside_start..close].trim_matches([' ', '\t']);
                pieces.push(Piece::Variable { name, range: open..close + CLOSE.len() });
                at = close + CLOSE.len();
            }
            Some(close) => {
                pieces.push(Piece::Malformed { range: open..close + CLOSE.len() });
                at = close + CLOSE.len();
            }
            None => {
                pieces.push(Piece::Malformed { range: open..inside_start });
                at = inside_start;
            }
        }
    }
    push_text(&mut pieces, &text[at..]);
    pieces
}

fn push_text<'t>(pieces: &mut Vec<Piece<'t>>, text: &'t str) {
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
}

/// A variable name as `let` spells it: a letter or `_`, then letters, digits and `_`.
pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables_with_or_without_spaces() {
        let text = "hash: ${{ hash }}\nname: \"${{name}}-x\"\n";
        assert_eq!(
            pieces(text),
            [
                Piece::Text("hash: "),
                Piece::Variable { name: "hash", range: 6..17 },
                Piece::Text("\nname: \""),
                Piece::Variable { name: "name", range: 25..34 },
                Piece::Text("-x\"\n"),
            ]
        );
    }

    #[test]
    fn text_without_the_marker_is_one_piece() {
        let text = "command: [sh, -c, 'echo ${HOSTNAME} $HOME $(POD_NAME) {{ .Values.x }}']\n";
        assert_eq!(pieces(text), [Piece::Text(text)]);
        assert_eq!(pieces(""), []);
    }

    #[test]
    fn a_doubled_dollar_writes_the_marker_as_is() {
        let text = "run: echo $${{ github.sha }} $$${{x}}";
        let joined: String = pieces(text)
            .iter()
            .map(|p| match p {
                Piece::Text(t) => *t,
                other => panic!("only text expected, found {other:?}"),
            })
            .collect();
        assert_eq!(joined, "run: echo ${{ github.sha }} $${{x}}");
    }

    #[test]
    fn a_marker_without_a_name_is_malformed() {
        assert_eq!(
            pieces("a: ${{ github.sha }} b"),
            [Piece::Text("a: "), Piece::Malformed { range: 3..20 }, Piece::Text(" b")]
        );
        assert_eq!(
            pieces("a: ${{ x\nb: }}"),
            [Piece::Text("a: "), Piece::Malformed { range: 3..6 }, Piece::Text(" x\nb: }}")]
        );
        assert_eq!(pieces("${{}}"), [Piece::Malformed { range: 0..5 }]);
    }
}
