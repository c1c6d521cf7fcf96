"""OneID: binding more channel identities (WeChat, WeCom, Tmall, JD, Douyin, store cards) to one member."""
