"""Operations with several implementations behind one dispatch point (convolution, pooling, the fused LSTM sequence op)."""
