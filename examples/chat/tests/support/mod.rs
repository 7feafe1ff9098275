//! What the chat tests read from a chat's output.

use std::collections::BTreeSet;

use cyclon_examples::testing::Output;

/// The chat's peer id and first listen address, from its greeting.
pub fn identity(output: &Output) -> Option<(String, String)> {
    let id = output
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("Local peer id: "))?;
    let address = output
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("Listening on "))?;
    Some((id.to_owned(), address.to_owned()))
}

/// The peers the chat shows as present, from its `joined` / `left` lines.
pub fn members(output: &Output) -> BTreeSet<String> {
    let mut members = BTreeSet::new();
    for line in &output.stdout {
        let Some(event) = line.strip_prefix("* ") else {
            continue;
        };
        if let Some(peer) = event.strip_suffix(" joined") {
            members.insert(peer.to_owned());
        } else if let Some(peer) = event.strip_suffix(" left") {
            members.remove(peer);
        }
    }
    members
}
