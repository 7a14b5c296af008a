"""leadbot: intake, dispatch, conversation engine and channels."""
