"""The served mini-app in headless Chromium."""
