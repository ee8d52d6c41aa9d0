//! Terminals inside the console: each session (a shell exec'd into a container, or an attach to
//! the container's own stdio) is a vt100 parser fed by the PTY's output, drawn into a pane, with
//! keys encoded back into the bytes a terminal would send. A session keeps running when the
//! user detaches (Ctrl-]); several can be open at once.

use berth::api::ContainerId;
use bytes::Bytes;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use tokio::sync::mpsc;

/// The key that leaves a shell without ending it (as telnet's escape).
pub fn is_detach(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(k.code, KeyCode::Char(']') | KeyCode::Char('5'))
}

/// A size for the parser: vt100 wants non-zero dimensions.
pub fn nz(v: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(v).unwrap_or(std::num::NonZeroU16::MIN)
}

/// What a session is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A new `sh` exec'd into the container.
    Shell,
    /// The container's own process (its TTY, or its output when it has none).
    Attach,
}

/// One terminal session.
pub struct Session {
    pub id: u32,
    pub kind: SessionKind,
    pub container: ContainerId,
    pub name: String,
    /// Where a resize goes; `None` before the session started and for one without a TTY.
    pub resize: Option<super::app::ResizeTarget>,
    pub parser: vt100::Parser,
    /// Bytes for the process; `None` until the session has started, after it ended, and for a
    /// read-only one.
    pub input: Option<mpsc::Sender<Bytes>>,
    /// Connected (the exec started, the attach answered).
    pub started: bool,
    /// Keys typed before the session was connected, sent once it is.
    pub typed_early: Vec<u8>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// The session's process is gone (an attach can end without an exit code to show).
    pub closed: bool,
}

impl Session {
    pub fn new(
        id: u32,
        kind: SessionKind,
        container: ContainerId,
        name: String,
        rows: u16,
        cols: u16,
    ) -> Self {
        Self {
            id,
            kind,
            container,
            name,
            resize: None,
            parser: vt100::Parser::new(nz(rows), nz(cols), 1000),
            input: None,
            started: false,
            typed_early: Vec::new(),
            exit_code: None,
            error: None,
            closed: false,
        }
    }

    pub fn ended(&self) -> bool {
        self.closed || self.exit_code.is_some() || self.error.is_some()
    }

    /// Started, not ended, and nothing to type into: an attach to a container without a TTY.
    pub fn read_only(&self) -> bool {
        self.started && !self.ended() && self.input.is_none()
    }

    pub fn title(&self) -> String {
        let state = match (&self.exit_code, &self.error) {
            (Some(c), _) => format!(" (exited {c})"),
            (_, Some(_)) => " (failed)".into(),
            _ if self.closed => " (ended)".into(),
            _ if !self.started => " (starting)".into(),
            _ if self.input.is_none() => " (no TTY: output only)".into(),
            _ => String::new(),
        };
        format!("{} #{}{state}", self.name, self.id)
    }
}

/// The bytes a terminal sends for a key.
pub fn encode_key(k: &KeyEvent) -> Option<Vec<u8>> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let alt = k.modifiers.contains(KeyModifiers::ALT);
    let mut out = match k.code {
        KeyCode::Char(c) if ctrl => {
            let c = c.to_ascii_lowercase();
            match c {
                'a'..='z' => vec![c as u8 - b'a' + 1],
                ' ' | '@' | '2' => vec![0],
                '[' | '3' => vec![0x1b],
                '\\' | '4' => vec![0x1c],
                '6' | '^' => vec![0x1e],
                '-' | '_' | '7' => vec![0x1f],
                _ => return None,
            }
        }
        KeyCode::Char(c) => c.to_string().into_bytes(),
        KeyCode::Enter => vec![b'\r'],
        KeyCode::Backspace => vec![0x7f],
        KeyCode::Tab => vec![b'\t'],
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Esc => vec![0x1b],
        KeyCode::Up => b"\x1b[A".to_vec(),
        KeyCode::Down => b"\x1b[B".to_vec(),
        KeyCode::Right => b"\x1b[C".to_vec(),
        KeyCode::Left => b"\x1b[D".to_vec(),
        KeyCode::Home => b"\x1b[H".to_vec(),
        KeyCode::End => b"\x1b[F".to_vec(),
        KeyCode::PageUp => b"\x1b[5~".to_vec(),
        KeyCode::PageDown => b"\x1b[6~".to_vec(),
        KeyCode::Delete => b"\x1b[3~".to_vec(),
        KeyCode::Insert => b"\x1b[2~".to_vec(),
        KeyCode::F(n @ 1..=4) => vec![0x1b, b'O', b'P' + n - 1],
        KeyCode::F(n @ 5..=12) => {
            let code = [15, 17, 18, 19, 20, 21, 23, 24][usize::from(n - 5)];
            format!("\x1b[{code}~").into_bytes()
        }
        _ => return None,
    };
    if alt {
        out.insert(0, 0x1b);
    }
    Some(out)
}

fn color(c: vt100::Color) -> Color {
    match c {
        vt100::Color::Default => Color::Reset,
        vt100::Color::Idx(i) => Color::Indexed(i),
        vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

/// Draw a session's screen into `area`, the cursor as a reversed cell.
pub fn render(screen: &vt100::Screen, area: Rect, buf: &mut Buffer, color_on: bool) {
    let (rows, cols) = screen.size();
    let (rows, cols) = (rows.get(), cols.get());
    for row in 0..rows.min(area.height) {
        for col in 0..cols.min(area.width) {
            let Some(cell) = screen.cell(row, col) else {
                continue;
            };
            let mut style = Style::new();
            if color_on {
                style = style.fg(color(cell.fgcolor())).bg(color(cell.bgcolor()));
            }
            if cell.bold() {
                style = style.add_modifier(Modifier::BOLD);
            }
            if cell.italic() {
                style = style.add_modifier(Modifier::ITALIC);
            }
            if cell.underline() {
                style = style.add_modifier(Modifier::UNDERLINED);
            }
            if cell.inverse() {
                style = style.add_modifier(Modifier::REVERSED);
            }
            let text = cell.contents();
            let b = &mut buf[(area.x + col, area.y + row)];
            b.set_symbol(if text.is_empty() { " " } else { text });
            b.set_style(style);
        }
    }
    if !screen.hide_cursor() {
        let (r, c) = screen.cursor_position();
        if r < area.height && c < area.width {
            let b = &mut buf[(area.x + c, area.y + r)];
            b.set_style(b.style().add_modifier(Modifier::REVERSED));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_terminal_bytes() {
        let k = |c, m| encode_key(&KeyEvent::new(c, m)).unwrap();
        assert_eq!(k(KeyCode::Char('c'), KeyModifiers::CONTROL), [3]);
        assert_eq!(k(KeyCode::Char('x'), KeyModifiers::ALT), [0x1b, b'x']);
        assert_eq!(k(KeyCode::Enter, KeyModifiers::NONE), [b'\r']);
        assert_eq!(k(KeyCode::Up, KeyModifiers::NONE), b"\x1b[A");
        assert_eq!(k(KeyCode::Char('é'), KeyModifiers::NONE), "é".as_bytes());
        assert!(is_detach(&KeyEvent::new(
            KeyCode::Char(']'),
            KeyModifiers::CONTROL
        )));
    }

    #[test]
    fn screen_renders_text_and_cursor() {
        let mut p = vt100::Parser::new(nz(3), nz(10), 0);
        p.process(b"hi\r\n\x1b[1mbold");
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 3));
        render(p.screen(), Rect::new(0, 0, 10, 3), &mut buf, true);
        assert_eq!(buf[(0, 0)].symbol(), "h");
        assert!(buf[(0, 1)].style().add_modifier.contains(Modifier::BOLD));
        assert!(
            buf[(4, 1)]
                .style()
                .add_modifier
                .contains(Modifier::REVERSED),
            "cursor after 'bold'"
        );
    }
}
