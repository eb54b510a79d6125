"""Pure ``Column -> Column`` builders: every column rule of SPEC §2-§8 as native expressions."""
