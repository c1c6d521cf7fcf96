"""Community activity (社群互动积分): points per activity kind, a daily cap per member, and moderation."""
