"""Alerts: rules that watch the mirror and our own health, the state each rule's
subjects are in, the transitions between those states (recorded once), and
their delivery to channels (e-mail, chat, any webhook)."""
