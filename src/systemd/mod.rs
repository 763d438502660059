//! The only code that speaks D-Bus: connection (bus or private socket), manager calls,
//! job waiting, unit properties.
