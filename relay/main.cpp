// Placeholder entry point; the CLI lands with the core relay.
int main() { return 0; }
