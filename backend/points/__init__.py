"""Points: earning rules, daily check-in, referral rewards, leaderboard and badges."""
