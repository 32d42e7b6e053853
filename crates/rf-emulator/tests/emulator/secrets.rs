//! Secrets: API keys never show in debug output.

use super::*;

#[tokio::test]
async fn debug_output_never_shows_keys() {
    let env = start_with(EmulatorConfig::for_tests().with_key("very-secret-key-123", "ws2")).await;
    let shown = format!(
        "{:?} {:?}",
        env.emu,
        EmulatorConfig::for_tests().with_key("very-secret-key-123", "ws2")
    );
    assert!(!shown.contains("very-secret-key-123"), "{shown}");
    assert!(!shown.contains("test-key"), "{shown}");
    env.emu.shutdown().await;
}
