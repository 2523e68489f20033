"""Built-in layer kinds. Importing this package registers them."""
from . import (activation, attention, bidirectional, compare, conv, conv2d, dense, dot, dot_attention,  # noqa: F401
               dropout, elu, embedding, gru, input, leaky_relu, logical, lstm, mask_ops, masking, merge,
               normalization, one_hot, pooling, reduce_bool, relu, reshaping, set_mask, simple_rnn, softmax,
               text_vectorization, time_distributed)
