"""Pure notification rules: message types, masking, channel choice, quiet hours, reminders."""
