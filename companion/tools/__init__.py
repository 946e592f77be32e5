"""Tools the model may call: from plugins and MCP servers, with permissions and timeouts."""
