//! Text that peers choose: display names and file names. Each is sanitized once, where it
//! enters the core (session frames, presence records, file manifests), so everything above
//! sees only text that cannot reorder what is shown around it, hide characters, or name a
//! path or a device.
//!
//! This module uses nothing else of the crate, so every layer may call it.

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest file name, in bytes (the limit of common file systems).
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// What an empty or fully stripped file name becomes.
pub const DEFAULT_FILE_NAME: &str = "file";
/// Longest extension kept whole when a file name is shortened, in bytes.
const MAX_KEPT_EXTENSION: usize = 16;

/// Characters that change how text is shown without being seen: bidi embeddings, overrides,
/// isolates and marks, zero-width characters and joiners, invisible fillers and operators,
/// tag characters, interlinear annotation controls.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'               // soft hyphen
        | '\u{034F}'             // combining grapheme joiner
        | '\u{061C}'             // Arabic letter mark
        | '\u{115F}' | '\u{1160}' // Hangul fillers
        | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}' // Mongolian selectors and vowel separator
        | '\u{200B}'..='\u{200F}' // zero-width space, (non-)joiner, LRM, RLM
        | '\u{202A}'..='\u{202E}' // LRE, RLE, PDF, LRO, RLO
        | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, LRI..PDI, deprecated
        | '\u{3164}'             // Hangul filler
        | '\u{FEFF}'             // zero-width no-break space (BOM)
        | '\u{FFA0}'             // halfwidth Hangul filler
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation controls
        | '\u{1D173}'..='\u{1D17A}' // musical formatting controls
        | '\u{E0000}'..='\u{E007F}' // tag characters
    )
}

/// Controls and invisible characters removed, every run of white space (any kind, including
/// line and paragraph separators) one plain space, trimmed.
fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(1024));
    let mut space = false;
    for c in raw.chars() {
        if c.is_whitespace() && !c.is_control() {
            space = true;
        } else if !c.is_control() && !is_invisible(c) {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// A display name from a peer, safe to show: no controls, bidi or zero-width characters,
/// white space collapsed and trimmed, at most [`MAX_NAME_CHARS`] characters. May be empty
/// (callers show the short fingerprint then).
pub fn display_name(raw: &str) -> String {
    let mut name: String = clean(raw).chars().take(MAX_NAME_CHARS).collect();
    name.truncate(name.trim_end().len());
    name
}

/// A short line of free text from a peer (an error text): cleaned like a name, at most
/// `max_chars` characters.
pub fn line(raw: &str, max_chars: usize) -> String {
    clean(raw).chars().take(max_chars).collect()
}

/// Windows device names, reserved with any extension.
fn is_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or_default().trim_end();
    let upper = stem.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            let mut chars = upper.chars();
            let prefix: String = chars.by_ref().take(3).collect();
            let rest: Vec<char> = chars.collect();
            (prefix == "COM" || prefix == "LPT")
                && rest.len() == 1
                && matches!(rest[0], '1'..='9' | '¹' | '²' | '³')
        }
    }
}

/// Cuts `name` to at most `max` bytes on a character boundary, keeping a short extension.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= MAX_KEPT_EXTENSION => name.split_at(i),
        _ => (name, ""),
    };
    let mut cut = max - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut])
}

/// A file name from a peer, safe to show and to create inside a folder on any platform: the
/// last path component only, cleaned like a name, characters Windows reserves (`:` of drive
/// letters and streams, `<>"|?*`) replaced by `_`, no leading dots, no trailing dots or
/// spaces, device names (`CON`, `NUL.txt`, `com1.log`, ...) prefixed with `_`, at most
/// [`MAX_FILE_NAME_BYTES`] bytes (keeping a short extension); [`DEFAULT_FILE_NAME`] when
/// nothing is left.
pub fn file_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = clean(base)
        .chars()
        .map(|c| match c {
            ':' | '<' | '>' | '"' | '|' | '?' | '*' => '_',
            c => c,
        })
        .collect();
    let short = shorten(&cleaned, MAX_FILE_NAME_BYTES - 1);
    let mut name = short.trim_matches(['.', ' ']).to_owned();
    if name.is_empty() {
        return DEFAULT_FILE_NAME.to_owned();
    }
    if is_device_name(&name) {
        name.insert(0, '_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_lose_what_hides_or_reorders_text() {
        let table: &[(&str, &str)] = &[
            ("alice", "alice"),
            ("  Zoë  Ángel ", "Zoë Ángel"),
            // Right-to-left override: "evil\u{202E}gpj.exe" would show as "evilexe.jpg".
            ("evil\u{202E}gpj.exe", "evilgpj.exe"),
            ("\u{202A}a\u{202B}b\u{202C}c\u{202D}d", "abcd"),
            ("\u{2066}x\u{2067}y\u{2068}z\u{2069}", "xyz"),
            ("\u{200E}l\u{200F}r\u{061C}", "lr"),
            // Zero-width characters make look-alikes of another name.
            ("al\u{200B}ice", "alice"),
            ("al\u{200D}i\u{200C}ce\u{2060}\u{FEFF}", "alice"),
            ("\u{E0041}\u{E0042}bob", "bob"),
            ("\u{3164}\u{115F}", ""),
            // Control characters: newlines, escape sequences, NUL, DEL, C1.
            ("bob\n[admin]", "bob[admin]"),
            ("\u{1b}[31mred\u{1b}[0m", "[31mred[0m"),
            ("a\u{0}b\u{7f}c\u{85}d\u{9b}e", "abcde"),
            // Any white space is one space.
            ("a\u{2028}b\u{2029}c\u{3000}d\u{a0}\u{a0}e", "a b c d e"),
            ("\t \u{2003}", ""),
            ("", ""),
            ("🙂 family 👨👩", "🙂 family 👨👩"),
        ];
        for (raw, want) in table {
            assert_eq!(display_name(raw), *want, "{raw:?}");
        }
    }

    #[test]
    fn display_names_are_bounded_in_characters() {
        let long = "é".repeat(500);
        assert_eq!(display_name(&long).chars().count(), MAX_NAME_CHARS);
        // The cut never leaves a trailing space.
        let spaced = format!("{} b", "a".repeat(MAX_NAME_CHARS - 1));
        assert_eq!(display_name(&spaced), "a".repeat(MAX_NAME_CHARS - 1));
        // Invisible characters do not count towards the bound.
        let padded = format!("{}x", "\u{200B}".repeat(1000));
        assert_eq!(display_name(&padded), "x");
    }

    #[test]
    fn file_names_are_safe_on_every_platform() {
        let table: &[(&str, &str)] = &[
            ("holiday.jpg", "holiday.jpg"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\a\\report.pdf", "report.pdf"),
            ("dir/", "file"),
            ("C:x", "C_x"),
            ("C:", "C_"),
            ("report.txt:hidden", "report.txt_hidden"),
            ("a<b>c\"d|e?f*g", "a_b_c_d_e_f_g"),
            ("..", "file"),
            (".", "file"),
            ("...", "file"),
            (".hidden", "hidden"),
            (". .bashrc", "bashrc"),
            ("name. . ", "name"),
            ("trailing...", "trailing"),
            ("", "file"),
            ("\u{200B}\u{202E}", "file"),
            ("evil\u{202E}gpj.exe", "evilgpj.exe"),
            ("a\u{0}b\nc.txt", "abc.txt"),
            ("tab\there.txt", "tabhere.txt"),
            ("CON", "_CON"),
            ("con", "_con"),
            ("PRN.txt", "_PRN.txt"),
            ("aux.tar.gz", "_aux.tar.gz"),
            ("NUL", "_NUL"),
            ("nul .txt", "_nul .txt"),
            ("COM1", "_COM1"),
            ("com9.log", "_com9.log"),
            ("LPT1", "_LPT1"),
            ("lpt5.doc", "_lpt5.doc"),
            ("COM¹.txt", "_COM¹.txt"),
            ("CONOUT$", "_CONOUT$"),
            ("COM0", "COM0"),
            ("COM10", "COM10"),
            ("CONSOLE.txt", "CONSOLE.txt"),
            ("icon.png", "icon.png"),
            ("my con.txt", "my con.txt"),
        ];
        for (raw, want) in table {
            assert_eq!(file_name(raw), *want, "{raw:?}");
        }
    }

    #[test]
    fn file_names_are_bounded_in_bytes_and_keep_their_extension() {
        let long = "é".repeat(200);
        let name = file_name(&long);
        assert!(name.len() < MAX_FILE_NAME_BYTES && name.chars().all(|c| c == 'é'));
        let long = format!("{}.jpeg", "x".repeat(400));
        let name = file_name(&long);
        assert!(name.len() <= MAX_FILE_NAME_BYTES && name.ends_with("x.jpeg"));
        // A long "extension" is not kept whole.
        let long = format!("a.{}", "b".repeat(400));
        assert!(file_name(&long).len() <= MAX_FILE_NAME_BYTES);
        // A cut that lands before dots or spaces does not leave them trailing.
        let long = format!("{}{}z", "y".repeat(250), ". ".repeat(100));
        let name = file_name(&long);
        assert!(!name.ends_with('.') && !name.ends_with(' '), "{name:?}");
        // Every output is a fixed point.
        for raw in ["CON", "..", "a:b", &long] {
            let once = file_name(raw);
            assert_eq!(file_name(&once), once);
        }
    }

    #[test]
    fn lines_are_cleaned_and_bounded() {
        assert_eq!(line("bad\r\nframe\u{202E}x", 100), "badframex");
        assert_eq!(line(&"a".repeat(1000), 10), "a".repeat(10));
    }
}
